"""Memory: the peak of the module's forward, and what the module still holds after a generation that releases it.

The release rows replay what the webuis do with the module around one generation (sing_webui.runtime and the host
seams in sing_webui/hosts/): load it on the CPU in the working dtype (checkpoint.load_module, as runtime.get_module
does), place it on the device for the start, then either move it back to the CPU ("move to CPU after use", A1111's
--medvram/--lowvram, Forge's manager offloading it) or drop it ("unload after use"), then collect as torch_gc does.
The webui adapter itself needs a webui to import, so its few lines are replayed here on the engine's objects.
After the release the allocator must be back at its baseline: the module holds no CUDA memory. The weak reference
shows on any device that nothing kept the dropped module alive.
"""

from __future__ import annotations

import tempfile
import weakref
from pathlib import Path

import torch

from sing_core.checkpoint import load_module, save_module
from sing_core.gpucheck import device as dev
from sing_core.gpucheck.parity import build_module
from sing_core.gpucheck.shapes import SIGMA_MAX, Network
from sing_core.start import sigma_start

POLICIES = ("move to CPU after use", "unload after use")


def forward_peak(network: Network, side: int, tokens: int, device, dtype, seed: int) -> dict:
    """Peak allocation of one guided start (cond and uncond in one forward of batch 2) above the resident weights."""
    module = build_module(network, device, seed).to(dtype)
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(1, module.latent_channels, side, side, generator=g).to(device, dtype)
    cond, uncond = (torch.randn(1, tokens, module.cross_attention_dim, generator=g).to(device) for _ in range(2))
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    module.predict_x0(x1, cond, uncond, network.guidance)  # warm-up: workspaces chosen, allocator blocks made
    dev.free(device)
    before = dev.allocated(device)
    dev.reset_peak(device)
    x0_hat = module.predict_x0(x1, cond, uncond, network.guidance)
    top = dev.peak(device)
    del module, x0_hat
    dev.free(device)
    return {
        "module": network.name,
        "latent": f"1×4×{side}×{side}, guided (forward batch 2)",
        "dtype": str(dtype).removeprefix("torch."),
        "weights_mib": dev.mib(weights),
        "forward_peak_mib": None if top is None else dev.mib(top - before),
        "note": None if dev.is_cuda(device) else dev.NO_CPU_ALLOCATOR,
    }


def _generation(module, x1, cond, uncond, guidance: float, device) -> torch.Tensor:
    """The start the webui hands its sampler (its own tensor, on the device)."""
    module.to(device)
    x0_hat = module.predict_x0(x1, cond, uncond, guidance)
    return sigma_start(x0_hat, x1, SIGMA_MAX)


def release_rows(network: Network, side: int, tokens: int, device, dtype, seed: int) -> list[dict]:
    """One generation per policy, from the module file through load_module, as the webuis load it."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "module.safetensors"
        built = build_module(network, torch.device("cpu"), seed)
        save_module(built.unet.state_dict(), built.config, path, kind=built.kind)
        del built
        g = torch.Generator().manual_seed(seed)
        x1 = torch.randn(1, 4, side, side, generator=g).to(device)
        width = network.config["cross_attention_dim"]
        cond, uncond = (torch.randn(1, tokens, width, generator=g).to(device) for _ in range(2))
        # One generation first, untimed and unmeasured: cuBLAS and cuDNN keep per-stream workspaces from their first
        # use on, which belong to torch, not to the module, and must be in the baseline.
        _generation(load_module(path, device="cpu", dtype=dtype), x1, cond, uncond, network.guidance, device)
        for policy in POLICIES:
            if dev.is_cuda(device):  # garbage may hold CUDA tensors; on the CPU only the weak reference tells
                dev.collect(device)
            baseline = dev.allocated(device)
            module = load_module(path, device="cpu", dtype=dtype)
            alive = weakref.ref(module)
            start = _generation(module, x1, cond, uncond, network.guidance, device)
            finite = bool(torch.isfinite(start).all())
            del start  # the host's latent: the sampler owns it, not the module
            if policy == "move to CPU after use":
                module.to("cpu")
                on_device = any(t.device.type != "cpu" for t in [*module.parameters(), *module.buffers()])
            else:
                del module
                on_device = None
            if dev.is_cuda(device) or policy == "unload after use":
                dev.collect(device)
            after = dev.allocated(device)
            rows.append({
                "module": network.name,
                "policy": policy,
                "dtype": str(dtype).removeprefix("torch."),
                "start_finite": finite,
                "held_bytes": None if baseline is None else after - baseline,
                "tensors_left_on_device": on_device,
                "module_freed": alive() is None if policy == "unload after use" else None,
                "note": None if dev.is_cuda(device) else dev.NO_CPU_ALLOCATOR,
            })
            if policy == "move to CPU after use":
                del module
    for row in rows:
        row["released"] = (
            row["start_finite"]
            and row["held_bytes"] in (0, None)
            and row["tensors_left_on_device"] in (False, None)
            and row["module_freed"] in (True, None)
        )
    return rows
