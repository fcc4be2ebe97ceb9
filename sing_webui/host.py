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

__all__ = ["FirstPoint", "check_fits", "context_width", "family", "first_point", "latent_channels",
           "resolve_text_source", "sampler_kind", "ztsnr_reason"]


def family(sd_model) -> str:
    return webui.family(sd_model)


def latent_channels(sd_model) -> int:
    return webui.latent_channels(sd_model)


def context_width(sd_model) -> int | None:
    """How wide the checkpoint's text conditioning is: what its UNet's cross-attention reads (768 SD-1, 1024 SD-2,
    2048 SDXL); None for a model without such a UNet."""
    unet = webui.unet(sd_model)
    for name, layer in unet.named_modules() if unet is not None else ():
        if name.endswith("attn2.to_k") and hasattr(layer, "in_features"):
            return int(layer.in_features)
    return None


def check_fits(sd_model, module: SingModule, module_label: str) -> None:
    """Refuse a host the module cannot serve, naming both sides and what to do instead."""
    refusal = rules.fit_refusal(family(sd_model), latent_channels(sd_model), module.kind, module.latent_channels,
                                module_label)
    if refusal:
        raise SingDiffusionError(refusal)


def ztsnr_reason(p) -> str | None:
    """Why the module does nothing on this generation's schedule (it reaches SNR 0 itself); None where it runs."""
    last = float(webui.timestep_alphas_cumprod(p).reshape(-1)[-1])
    return rules.ztsnr_reason(last, webui.ztsnr_marker(p.sd_model))


def resolve_text_source(choice: str, sd_model, module: SingModule) -> str:
    try:
        return rules.text_source(choice, family(sd_model), context_width(sd_model), module.kind,
                                 module.cross_attention_dim, int(shared.opts.CLIP_stop_at_last_layers))
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
