"""What sing_diffusers cannot serve in diffusers, said before any work is done, with the cause and the fix.

A pipeline's latent family is read from its parts: two text encoders or SDXL's size conditioning ("text_time") make
it SDXL, an SDXL pipeline without the first text encoder or asking for aesthetic scores is the SDXL refiner, a
pipeline with a transformer instead of a UNet is SD3, Flux and the like; the rest is SD-1.x/2.x. Which module serves
which family is sing_core.kinds' decision (ModuleKind.refusal); this file only names the pipeline's side.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from sing_core.kinds import FAMILY_NAMES, VAE_SCALING_FACTORS, ModuleKind

SD2_TEXT_WIDTH = 1024  # only to name an SD pipeline SD-1.x or SD-2.x in messages; both are served alike


class SingDiffusersError(ValueError):
    """A pipeline, scheduler or argument a start module cannot serve; the message names the cause and the fix."""


def host_family(pipe: Any) -> str:
    """The pipeline's family in sing_core.kinds' terms ("SD-1.x", "SD-2.x", "SDXL", "SDXL refiner", "SD3/Flux")."""
    unet = getattr(pipe, "unet", None)
    if unet is None:
        return "a transformer model (SD3, Flux, ...)" if getattr(pipe, "transformer", None) is not None else (
            "a model without a UNet")
    xl = getattr(pipe, "text_encoder_2", None) is not None or unet.config.get("addition_embed_type") == "text_time"
    if xl:
        config = getattr(pipe, "config", {})
        refiner = getattr(pipe, "text_encoder", None) is None or config.get("requires_aesthetics_score", False)
        return "SDXL refiner" if refiner else "SDXL"
    return "SD-2.x" if unet.config.cross_attention_dim == SD2_TEXT_WIDTH else "SD-1.x"


def check_pipeline(pipe: Any, kind: ModuleKind, latent_channels: int) -> None:
    """Refuse a pipeline of another family than the module's (SD3, Flux, the SDXL refiner, SD-latent modules on
    SDXL, ...), pipelines that never start from noise, and latents that do not fit the module."""
    name = type(pipe).__name__
    family = host_family(pipe)
    why = kind.refusal(family)
    if why is not None:
        raise SingDiffusersError(f"{name}: {why}")
    parameters = inspect.signature(pipe.__call__).parameters
    if family == "SDXL" and "strength" in parameters:
        raise SingDiffusersError(
            f"{name} starts from an input image (SDXL img2img and inpainting are not served: they noise the image "
            "part of the way); use StableDiffusionXLPipeline or StableDiffusionXLControlNetPipeline"
        )
    if "latents" not in parameters:
        raise SingDiffusersError(
            f"{name} always starts from the input image noised to its strength, never from pure noise, and the "
            "module replaces only a start from pure noise; use StableDiffusionPipeline, a ControlNet pipeline, "
            "or an inpaint pipeline at strength=1.0"
        )
    vae = getattr(pipe, "vae", None)
    channels = vae.config.latent_channels if vae is not None else pipe.unet.config.in_channels
    if channels != latent_channels:
        raise SingDiffusersError(
            f"{name} samples {channels}-channel latents and the module predicts {latent_channels}-channel latents; "
            "use a module trained for this latent space"
        )
    scale = vae.config.get("scaling_factor") if vae is not None else None
    module_scale = VAE_SCALING_FACTORS[kind.family]
    if scale is not None and abs(scale - module_scale) > 1e-6:
        raise SingDiffusersError(
            f"{name}'s VAE scales latents by {scale:g} and the module predicts {FAMILY_NAMES[kind.family]} latents "
            f"scaled by {module_scale:g}: another latent space, which the module was not trained on; use the VAE of "
            "the pipeline's own family, or a module trained for this VAE"
        )


def check_starts_from_nothing(pipe: Any, pipeline_kwargs: Mapping[str, Any]) -> None:
    """An inpaint pipeline starts from pure noise only at strength 1.0 (its default); refuse any other strength."""
    parameter = inspect.signature(pipe.__call__).parameters.get("strength")
    if parameter is None:
        return
    strength = pipeline_kwargs.get("strength", parameter.default)
    if strength != 1.0:
        raise SingDiffusersError(
            f"{type(pipe).__name__} with strength={strength} starts from the input image noised part of the way, "
            "not from pure noise, and the module replaces only a start from pure noise; use strength=1.0 (the "
            "masked region is then sampled from nothing) or generate without the module"
        )
