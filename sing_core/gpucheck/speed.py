"""Speed: our SingUNet against diffusers' UNet2DConditionModel with the same weights (the time path removed as the
reference removes it), and the module against one step of an SD-1.5-size host UNet, in paired rounds.

Each round times one forward of each side with CUDA events (the wall clock on a CPU), the order alternating from
round to round so that neither side always runs second; the figures are the medians of each side and the median of
the per-round ratios. Warm-up forwards (kernel selection, the allocator's first blocks) are not timed.
Attention is torch's scaled_dot_product_attention on both sides (diffusers' default AttnProcessor2_0).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from sing_core.config import UNetConfig
from sing_core.gpucheck import device as dev
from sing_core.gpucheck.seams import reference_unet
from sing_core.gpucheck.shapes import Network, Sizes
from sing_core.unet import SingUNet

Forward = Callable[[], object]


def paired(first: Forward, second: Forward, device: torch.device, warmup: int, rounds: int) -> dict:
    """Medians of each side's ms and of first/second per round."""
    for _ in range(warmup):
        first()
        second()
    times: dict[str, list[float]] = {"first": [], "second": []}
    for index in range(rounds):
        order = (("first", first), ("second", second)) if index % 2 == 0 else (("second", second), ("first", first))
        for name, fn in order:
            times[name].append(dev.time_ms(fn, device))
    ratios = [a / b for a, b in zip(times["first"], times["second"], strict=True)]
    return {
        "first_ms": statistics.median(times["first"]),
        "second_ms": statistics.median(times["second"]),
        "ratio": statistics.median(ratios),
        "ratio_quartiles": _quartiles(ratios),
        "rounds": rounds,
    }


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]]
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def _diffusers():
    try:
        import diffusers
        from diffusers.utils import logging
    except ImportError as error:
        raise RuntimeError(
            f"diffusers is not importable ({error}): install it (requirements/test.txt), or on a machine without "
            "network carry its wheel and install it with --no-index (docs/benchmarks.md, GPU)"
        ) from error
    logging.set_verbosity_error()  # its advice on .to(dtype) is about from_pretrained, not us
    return diffusers


def twins(config: dict, device: torch.device, dtype: torch.dtype, seed: int):
    """(ours, diffusers') on one set of weights: ours holds the very tensors of diffusers' model (no second copy)."""
    torch.manual_seed(seed)
    with device:
        reference = reference_unet(config)
    reference.to(dtype)
    with torch.device("meta"):
        ours = SingUNet(UNetConfig.from_dict(config))
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("time_embedding.")}
    ours.load_state_dict(state, strict=True, assign=True)
    return ours.eval(), reference


def host_unet(config: dict, device: torch.device, dtype: torch.dtype, seed: int):
    """An SD-1.5-size host UNet, time embedding and all, as a webui runs it for one step."""
    diffusers = _diffusers()
    torch.manual_seed(seed)
    with device:
        model = diffusers.UNet2DConditionModel(**config)
    return model.to(dtype).eval()


def _inputs(config: dict, batch: int, side: int, tokens: int, device, dtype, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.get("in_channels", 4), side, side, generator=g).to(device, dtype)
    context = torch.randn(batch, tokens, config["cross_attention_dim"], generator=g).to(device, dtype)
    return x, context


def _row(case: str, first: str, second: str, timing: dict, **extra) -> dict:
    return {"case": case, "first": first, "second": second, **timing, **extra}


def ours_vs_diffusers(network: Network, side: int, sizes: Sizes, device, dtype, seed: int) -> dict:
    _diffusers()
    ours, reference = twins(network.config, device, dtype, seed)
    x, context = _inputs(network.config, 2, side, sizes.tokens, device, dtype, seed)
    timestep = torch.full((2,), 999, device=device)  # diffusers still computes (and ignores) a time embedding
    with torch.inference_mode():
        difference = (ours(x, context).float() - reference(x, timestep, context).sample.float()).abs().max().item()
        timing = paired(lambda: ours(x, context), lambda: reference(x, timestep, context).sample, device,
                        sizes.warmup, sizes.rounds)
    return _row(f"{network.name}, batch 2, {side}×{side} latent", "ours", "diffusers", timing,
                max_abs_difference=difference)


def module_vs_host_step(network: Network, host_config: dict, sizes: Sizes, device, dtype, seed: int) -> dict:
    """The module's forward (cond + uncond, batch 2) in SD-1.5 host steps (the host's UNet on its CFG batch of 2)."""
    host = host_unet(host_config, device, dtype, seed)
    with device:
        torch.manual_seed(seed)
        module = SingUNet(UNetConfig.from_dict(network.config)).to(dtype).eval()
    x, context = _inputs(network.config, 2, sizes.side, sizes.tokens, device, dtype, seed)
    hx, hcontext = _inputs(host_config, 2, sizes.side, sizes.tokens, device, dtype, seed)
    timestep = torch.full((2,), 999, device=device)
    with torch.inference_mode():
        timing = paired(lambda: module(x, context), lambda: host(hx, timestep, hcontext).sample, device,
                        sizes.warmup, sizes.rounds)
    return _row(f"{network.name} module vs one SD-1.5-size host step, batch 2, {sizes.side}×{sizes.side}",
                "module", "host step", timing)


def compiled_vs_eager(network: Network, sizes: Sizes, device, dtype, seed: int) -> dict:
    """torch.compile of our UNet (default mode) against the same UNet eager; compile time reported apart."""
    with device:
        torch.manual_seed(seed)
        eager = SingUNet(UNetConfig.from_dict(network.config)).to(dtype).eval()
    compiled = torch.compile(eager)
    x, context = _inputs(network.config, 2, sizes.side, sizes.tokens, device, dtype, seed)
    with torch.inference_mode():
        compile_ms = dev.time_ms(lambda: compiled(x, context), device)  # the first call compiles
        timing = paired(lambda: compiled(x, context), lambda: eager(x, context), device, sizes.warmup, sizes.rounds)
    return _row(f"{network.name}, batch 2, {sizes.side}×{sizes.side}: torch.compile", "compiled", "eager", timing,
                compile_ms=compile_ms)


def speed_rows(sizes: Sizes, device: torch.device, dtype: torch.dtype, seed: int, compile_row: bool) -> list[dict]:
    cases = [
        lambda: ours_vs_diffusers(sizes.sd15, sizes.side, sizes, device, dtype, seed),
        lambda: ours_vs_diffusers(sizes.oms_b, sizes.side, sizes, device, dtype, seed),
        lambda: ours_vs_diffusers(sizes.oms_b, sizes.sdxl_side, sizes, device, dtype, seed),
        lambda: module_vs_host_step(sizes.sd15, sizes.sd15.config, sizes, device, dtype, seed),
        lambda: module_vs_host_step(sizes.oms_b, sizes.sd15.config, sizes, device, dtype, seed),
    ]
    if compile_row:
        cases.append(lambda: compiled_vs_eager(sizes.sd15, sizes, device, dtype, seed))
    rows = []
    for case in cases:
        rows.append(case())
        dev.free(device)  # the case's networks went with its frame
    return rows
