"""SingStart: the SAMPLER_SAMPLE wrapper that hands ComfyUI's sampler the SingDiffusion start.

ComfyUI's KSAMPLER.sample turns the unit noise x1 into the first point with the model's noise_scaling:
x1·√(1 + σ0²) at σmax, x1·σ0 below it (EPS and V_PREDICTION). The wrapper replaces x1 by (x̂0 + σ0·x1) / a, with
a that same scaling of a unit tensor, so every sampler (all of k-diffusion's, ddim, uni_pc) starts at x̂0 + σ0·x1
whatever its own arithmetic. Each image of the batch gets x̂0 from its own noise and conditioning.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from sing_core.start import sigma_start

from . import applies, conds, family

log = logging.getLogger("SingDiffusion")


class SingStart:
    """Called by ComfyUI as wrapper(executor, guider, sigmas, extra_args, callback, noise, latent_image,
    denoise_mask, disable_pbar); the arguments after noise are taken loosely, as core signatures change."""

    def __init__(self, module_patcher: Any, guidance_scale: float, positive: list | None = None,
                 negative: list | None = None, strength: float = 1.0, empty: list | None = None):
        self.module_patcher = module_patcher
        self.guidance_scale = float(guidance_scale)
        self.positive, self.negative = positive, negative
        self.empty = empty  # One More Step's "" encoded by the module's text encoder (the node's clip input)
        self.strength = float(strength)
        self.said: set[str] = set()

    def say_once(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            log.info("SingDiffusion: %s", message)

    def __call__(self, executor, guider, sigmas, extra_args, callback, noise, *args, **kwargs):
        latent_image = args[0] if args else kwargs.get("latent_image")
        denoise_mask = args[1] if len(args) > 1 else kwargs.get("denoise_mask")
        new_noise = self.start_noise(executor, guider, sigmas, noise, latent_image, denoise_mask)
        return executor(guider, sigmas, extra_args, callback, new_noise, *args, **kwargs)

    def start_noise(self, executor, guider, sigmas, noise, latent_image, denoise_mask) -> torch.Tensor:
        """The noise to hand the sampler: SingDiffusion's start when sampling from nothing, else `noise` itself."""
        model_sampling = guider.inner_model.model_sampling
        refused = family.sampling_refusal(family.sampling_names(model_sampling), type(guider.inner_model).__name__)
        if refused:
            raise ValueError(refused)
        ztsnr = family.zero_terminal_snr(model_sampling)
        if ztsnr is not None:
            self.say_once(f"not applied: {ztsnr}; the start is ComfyUI's own")
            return noise
        sigma0 = float(sigmas[0])
        max_denoise = max_denoise_of(executor, guider, sigmas)
        at_top = max_denoise or applies.starts_at_top(sigmas, model_sampling.sigmas.tolist(),
                                                      float(model_sampling.sigma_max))
        reason = applies.why_not(noise, latent_image, denoise_mask, at_top, sigma0)
        if reason is not None:
            self.say_once(f"not applied: {reason}; the start is ComfyUI's own")
            return noise
        module = self.module_patcher.model.sing  # the patcher holds a HeldModule (held.py)
        guidance = conds.from_node(self.positive, self.negative,
                                   conds.from_guider(guider, self.guidance_scale, module.kind), self.empty)
        if guidance.note:
            self.say_once(guidance.note)
        check_widths(module, guidance)
        x0_hat = conds.module_x0(module_forward(module), noise, guidance, sigma0).to(noise.dtype)
        scale = model_sampling.noise_scaling(sigmas[:1], torch.ones_like(noise[:1]), torch.zeros_like(noise[:1]),
                                             max_denoise)
        return sigma_start(x0_hat, noise, sigma0, strength=self.strength) / scale  # λ·x̂0 + σ0·x1


def max_denoise_of(executor, guider, sigmas) -> bool:
    """The sampler's own answer (KSAMPLER.max_denoise), which decides its noise scaling."""
    sampler = getattr(executor, "class_obj", None)
    if hasattr(sampler, "max_denoise"):
        return bool(sampler.max_denoise(guider, sigmas))
    return applies.at_sigma_max(float(sigmas[0]), float(guider.inner_model.model_sampling.sigma_max))


def module_forward(module):
    def forward(x1: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = module(x1.to(module.device, module.dtype), emb.to(module.device, module.dtype))
        return out.to(x1.device, torch.float32).clone()  # out of inference mode: the sampler may edit it in place

    return forward


def check_widths(module, guidance: conds.Guidance) -> None:
    width = module.cross_attention_dim
    for side, items in (("positive", guidance.positive), ("negative", guidance.negative)):
        for cond in items:
            found = conds.embedding(cond).shape[-1]
            if found != width:
                raise conds.CondsError(
                    f"SingDiffusion: the {side} conditioning is {found} wide and module {module.name or ''} reads "
                    f"{width}-wide text ({module.kind.describe()}): {family.TEXT_SOURCES[module.kind.text]}, or "
                    "choose a module made for this text encoder")
