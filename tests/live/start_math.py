"""The start point sing_core says the sampler must receive, computed in the test interpreter from a probe capture."""

from __future__ import annotations

import torch
from probe import Capture

from sing_core import ddim_start, load_module, normalized_guidance, sd_alphas_cumprod

TIMESTEP_SAMPLERS = ("DDIM", "PLMS", "UniPC", "DDIM CFG++")


def expected_first_input(
    capture: Capture,
    module_folder,
    guidance_scale: float,
    alphas_cumprod=None,
    timestep: int | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """x̂0 from the host's own conditioning rows (text source host), then the DDIM step to the sampler's first
    point: x̂0 + σ0·x1 for k-diffusion samplers (the σ form), √ᾱ0·x̂0 + √(1 − ᾱ0)·x1 for timestep samplers.

    `strength` λ scales x̂0 in both forms. `timestep` overrides the captured one where the webui builds the start
    at another timestep than the one its sampler then calls the model at (img2img with DDIM: noised to
    timesteps[t_enc], first called at the one below).
    """
    module = load_module(module_folder)
    x1 = capture.noise
    batch = x1.shape[0]
    assert capture.text_cond.shape[0] == batch, "plain prompts: one conditioning row per image"
    with torch.no_grad():
        x0_cond = module(x1, capture.text_cond)
        x0_hat = x0_cond
        if guidance_scale > 1:
            x0_hat = normalized_guidance(x0_cond, module(x1, capture.text_uncond), guidance_scale)
    return step_to_first_point(capture, x0_hat, alphas_cumprod, timestep, strength)


def step_to_first_point(capture: Capture, x0_hat: torch.Tensor, alphas_cumprod=None, timestep: int | None = None,
                        strength: float = 1.0) -> torch.Tensor:
    """The DDIM step from x̂0 with the host's noise to the captured sampler's first point (either form)."""
    x1 = capture.noise
    if capture.sampler in TIMESTEP_SAMPLERS:
        timestep = round(float(capture.sigma[0])) if timestep is None else timestep
        alphas = sd_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
        return ddim_start(x0_hat, x1, alphas[timestep], strength)
    return strength * x0_hat + capture.sigma.view(-1, 1, 1, 1) * x1


def oms_x0(module_folder, x1: torch.Tensor, cond: torch.Tensor, empty: torch.Tensor | None,
           guidance_scale: float) -> torch.Tensor:
    """One More Step's x̂0 as its reference computes it, from the module's own network: v for the prompt and for
    "", plain CFG v_u + w·(v_c − v_u), then x̂0 = −v (v-prediction at SNR 0)."""
    module = load_module(module_folder)
    with torch.no_grad():
        v = module.unet(x1, cond.expand(x1.shape[0], -1, -1))
        if guidance_scale != 1.0:
            v_empty = module.unet(x1, empty.expand(x1.shape[0], -1, -1))
            v = v_empty + guidance_scale * (v - v_empty)
    return -v
