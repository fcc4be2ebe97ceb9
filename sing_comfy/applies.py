"""When the SingDiffusion start applies in ComfyUI: sampling from nothing.

That is an empty latent (all zeros), no noise mask, noise added, and a schedule that starts at its top: σmax
(ComfyUI's own "max denoise"), or the first point of ComfyUI's ddim_uniform schedule, the one built-in scheduler
that never reaches σmax. Denoise below 1 and later start steps begin below the top. Anywhere else the start is
exactly ComfyUI's own, and why is said once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

REL_TOL = 1e-5  # ComfyUI's own tolerance for "at σmax" (KSAMPLER.max_denoise)


def ddim_uniform_schedule(schedule: Sequence[float], steps: int) -> list[float]:
    """ComfyUI's ddim_uniform scheduler (comfy.samplers.ddim_scheduler) over the model's 1000 sigmas."""
    x, sigmas = 1, [0.0]
    if math.isclose(float(schedule[1]), 0.0, abs_tol=1e-5):
        steps, sigmas = steps + 1, []
    stride = max(len(schedule) // steps, 1)
    while x < len(schedule):
        sigmas.append(float(schedule[x]))
        x += stride
    return sigmas[::-1]


def ddim_uniform_tops(schedule: Sequence[float], count: int) -> set[float]:
    """The first sigma of every ddim_uniform schedule of `count` sigmas, or of count + 1 (the samplers that drop the
    penultimate sigma, uni_pc and dpm_2, ask for one step more)."""
    tops = set()
    for steps in range(1, len(schedule) + 1):
        sigmas = ddim_uniform_schedule(schedule, steps)
        if len(sigmas) in (count, count + 1):
            tops.add(sigmas[0])
        if len(sigmas) > count + 1:
            break
    return tops


def at_sigma_max(sigma0: float, sigma_max: float) -> bool:
    return math.isclose(sigma0, sigma_max, rel_tol=REL_TOL) or sigma0 > sigma_max


def starts_at_top(sigmas: torch.Tensor, schedule: Sequence[float], sigma_max: float) -> bool:
    """Whether the sampler's sigmas begin at the top of the model's schedule (sampling from nothing)."""
    sigma0 = float(sigmas[0])
    if at_sigma_max(sigma0, sigma_max):
        return True
    return any(math.isclose(sigma0, top, rel_tol=REL_TOL) for top in ddim_uniform_tops(schedule, len(sigmas)))


def why_not(noise: torch.Tensor, latent_image: torch.Tensor | None, denoise_mask: torch.Tensor | None,
            at_top: bool, sigma0: float) -> str | None:
    """Why this sampling does not start from nothing, or None when the SingDiffusion start applies."""
    if getattr(noise, "is_nested", False) or noise.ndim != 4:
        return f"the latent is not one batch of images (shape {list(noise.shape)})"
    if denoise_mask is not None:
        return "the latent has a noise mask (inpainting keeps the image outside the mask)"
    if not torch.count_nonzero(noise):
        return "no noise is added (add_noise disabled or DisableNoise)"
    if latent_image is not None and torch.count_nonzero(latent_image):
        return "the latent is not empty (image to image, or a later pass)"
    if not at_top:
        return (f"sampling starts at sigma {sigma0:.4g}, below the top of the schedule (denoise below 1 or a later "
                "start step)")
    return None
