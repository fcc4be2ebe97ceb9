"""What the loaded checkpoint is, and where the webui's sampler will start: read from the live objects.

One code path for both webuis: what differs between AUTOMATIC1111 and Forge is read through
sing_webui.hosts.webui (chosen at import), and decided by the plain functions of sing_webui.rules. The start is
never assumed: a k-diffusion sampler starts at its own first sigma (any scheduler, the SGM noise multiplier, Zero
Terminal SNR), a timestep sampler at its own first timestep, on the schedule the webui's model runs.
"""

from __future__ import annotations

from modules import sd_samplers_common, sd_samplers_kdiffusion, sd_samplers_timesteps, shared

from sing_core.module import SingModule
from sing_webui import rules
from sing_webui.failure import SingDiffusionError
from sing_webui.hosts import webui
from sing_webui.rules import FirstPoint

__all__ = ["FirstPoint", "check_fits", "family", "first_point", "latent_channels", "resolve_text_source"]


def family(sd_model) -> str:
    return webui.family(sd_model)


def latent_channels(sd_model) -> int:
    return webui.latent_channels(sd_model)


def check_fits(sd_model, module: SingModule, module_label: str) -> None:
    """Refuse a host the module cannot serve, saying what to do instead."""
    refusal = rules.fit_refusal(family(sd_model), latent_channels(sd_model), module.latent_channels, module_label)
    if refusal:
        raise SingDiffusionError(refusal)


def resolve_text_source(choice: str, sd_model, module: SingModule) -> str:
    try:
        return rules.text_source(choice, family(sd_model), webui.text_width(sd_model), module.cross_attention_dim,
                                 int(shared.opts.CLIP_stop_at_last_layers))
    except rules.RefusalError as refusal:
        raise SingDiffusionError(str(refusal)) from refusal


def first_point(p, img2img: bool) -> FirstPoint:
    sampler = p.sampler
    steps, t_enc = sd_samplers_common.setup_img2img_steps(p) if img2img else (p.steps, None)
    if isinstance(sampler, sd_samplers_kdiffusion.KDiffusionSampler):  # LCM and Forge's DDPM included
        sgm = bool(shared.opts.sgm_noise_multiplier)
        return rules.sigma_first_point(sampler.get_sigmas(p, steps), steps, t_enc, sgm)

    if isinstance(sampler, sd_samplers_timesteps.CompVisSampler):  # DDIM, DDIM CFG++, PLMS, UniPC
        alphas_cumprod = webui.timestep_alphas_cumprod(p)
        timestep = rules.first_timestep(sampler.get_timesteps(p, steps), t_enc,
                                        getattr(sampler.func, "__name__", "") == "unipc", len(alphas_cumprod))
        return rules.timestep_first_point(float(alphas_cumprod[timestep].double()), timestep)

    raise SingDiffusionError(
        f"sampler {p.sampler_name!r} ({type(sampler).__name__}) is neither a k-diffusion nor a timestep sampler, so "
        "its first point is unknown. Choose another sampler or disable SingDiffusion.", status_code=422)
