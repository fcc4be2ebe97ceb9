"""What the loaded checkpoint is, and where the webui's sampler will start: read from the live objects.

One code path for both webuis: what differs between AUTOMATIC1111 and Forge is read through
sing_webui.hosts.webui (chosen at import), and decided by the plain functions of sing_webui.rules and
sing_webui.sampler_start (where the sampler starts).
"""

from __future__ import annotations

from modules import sd_samplers_common, sd_samplers_kdiffusion, sd_samplers_timesteps, shared

from sing_core.module import SingModule
from sing_webui import rules, sampler_start
from sing_webui.failure import SingDiffusionError
from sing_webui.hosts import webui
from sing_webui.sampler_start import FirstPoint

__all__ = ["FirstPoint", "check_fits", "family", "first_point", "latent_channels", "resolve_text_source",
           "sampler_kind"]


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


def sampler_kind(sampler) -> str | None:
    if isinstance(sampler, sd_samplers_kdiffusion.KDiffusionSampler):  # LCM and Forge's DDPM included
        return sampler_start.SIGMA_SAMPLER
    if isinstance(sampler, sd_samplers_timesteps.CompVisSampler):  # DDIM, DDIM CFG++, PLMS, UniPC
        return sampler_start.TIMESTEP_SAMPLER
    return None


def first_point(p, img2img: bool) -> FirstPoint:
    steps, t_enc = sd_samplers_common.setup_img2img_steps(p) if img2img else (p.steps, None)
    try:
        return sampler_start.first_point(sampler_kind(p.sampler), p, steps, t_enc, shared.opts,
                                         lambda: webui.timestep_alphas_cumprod(p))
    except rules.RefusalError as refusal:
        raise SingDiffusionError(str(refusal)) from refusal
