"""Half-precision parity: the module's x̂0 in float16 and bfloat16 against float32 (same weights, noise and text),
unguided and guided, and the start it gives at σ0 = 14.6 in each form the hosts use.

Errors are relative to the module's own scale, rms(x̂0 of float32, unguided): a guided x̂0 partly cancels (for
SingDiffusion (u + w·(c − u))/w = c − (1 − 1/w)·u), so its error is stated on the same footing, not against its own
possibly small rms. The start's error is stated in the same units: how much of x̂0 survives in the half-precision
latent the host receives, pixel by pixel (rms) and in each channel's mean (the image's brightness and colour cast).
"""

from __future__ import annotations

import copy

import torch

from sing_core.config import UNetConfig
from sing_core.gpucheck import device as dev
from sing_core.gpucheck.shapes import SIGMA_MAX, Network
from sing_core.module import SingModule
from sing_core.schedule import alpha_cumprod_from_sigma
from sing_core.start import ddim_start, sigma_start, unit_noise_start

HALF_DTYPES = (torch.float16, torch.bfloat16)
# What the docs promise for x̂0 (rms error / the module's rms): float16 keeps 10 mantissa bits, bfloat16 7.
TOLERANCES = {"float16": 0.01, "bfloat16": 0.05}


def build_module(network: Network, device: torch.device, seed: int) -> SingModule:
    """A random module of the network's layout, initialised directly on the device (a GPU builds it in moments)."""
    torch.manual_seed(seed)
    with device:
        module = SingModule(UNetConfig.from_dict(network.config), kind=network.kind)
    return module.eval()


def _rms(t: torch.Tensor) -> float:
    return t.double().pow(2).mean().sqrt().item()


def _channel_mean_error(start: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest error of a channel's spatial mean."""
    return (start.double() - reference.double()).mean(dim=(-2, -1)).abs().max().item()


def _starts(x0_hat: torch.Tensor, x1: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three forms of the start at σ0, all expressed in σ form (x̂0 + σ0·x1) so that they compare."""
    alpha = alpha_cumprod_from_sigma(torch.tensor(SIGMA_MAX, dtype=torch.float64))
    return {
        "sigma": sigma_start(x0_hat, x1, SIGMA_MAX),
        "unit": unit_noise_start(x0_hat, x1, SIGMA_MAX) * SIGMA_MAX,
        "vp": ddim_start(x0_hat, x1, alpha) / alpha.sqrt().item(),
    }


def _predictions(module: SingModule, x1, cond, uncond, guidance: float) -> dict[str, torch.Tensor]:
    return {
        "unguided": module.predict_x0(x1, cond),
        "guided": module.predict_x0(x1, cond, uncond, guidance),
    }


def parity_rows(network: Network, side: int, tokens: int, device: torch.device, seed: int = 0) -> list[dict]:
    """One row per (dtype, guidance): x̂0's error and finiteness, and each start form's finiteness and error."""
    module = build_module(network, device, seed)
    g = torch.Generator().manual_seed(seed + 1)
    width = module.cross_attention_dim
    x1 = torch.randn(1, module.latent_channels, side, side, generator=g).to(device)
    cond, uncond = (torch.randn(1, tokens, width, generator=g).to(device) for _ in range(2))
    with dev.exact_float32():
        reference = _predictions(module, x1, cond, uncond, network.guidance)
        reference_starts = {name: _starts(x0, x1) for name, x0 in reference.items()}
    scale = _rms(reference["unguided"])
    rows = []
    for dtype in HALF_DTYPES:
        half = copy.deepcopy(module).to(dtype)
        x1_half = x1.to(dtype)
        predictions = _predictions(half, x1_half, cond, uncond, network.guidance)
        del half
        dtype_name = str(dtype).removeprefix("torch.")
        for name, x0_half in predictions.items():
            error = x0_half.float() - reference[name]
            starts = _starts(x0_half, x1_half)
            rows.append({
                "module": network.name,
                "dtype": dtype_name,
                "guidance": 1.0 if name == "unguided" else network.guidance,
                "x0_dtype": str(x0_half.dtype).removeprefix("torch."),
                "x0_finite": bool(torch.isfinite(x0_half).all()),
                "x0_rel_rms": _rms(error) / scale,
                "x0_max_abs": error.abs().max().item(),
                "x0_rms": scale,
                "tolerance": TOLERANCES[dtype_name],
                "start_finite": {form: bool(torch.isfinite(s).all()) for form, s in starts.items()},
                "start_rel_rms": {
                    form: _rms(s.double() - reference_starts[name][form].double()) / scale for form, s in starts.items()
                },
                # The latent's rounding is noise of high frequency: each channel's mean (the brightness the module
                # sets) survives it far better than the pixels do.
                "start_mean_error": {
                    form: _channel_mean_error(s, reference_starts[name][form]) / scale for form, s in starts.items()
                },
            })
    del module
    dev.free(device)
    for row in rows:
        row["within"] = row["x0_finite"] and all(row["start_finite"].values()) and row["x0_rel_rms"] <= row["tolerance"]
    return rows
