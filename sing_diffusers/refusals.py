"""What SingDiffusion cannot serve in diffusers, said before any work is done, with the cause and the fix."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

SD_LATENT_SCALE = 0.18215  # the SD-1.x/2.x VAE's latent scaling: the space the module predicts in
SERVED = "SingDiffusion modules serve Stable Diffusion 1.x and 2.x pipelines"


class SingDiffusersError(ValueError):
    """A pipeline, scheduler or argument SingDiffusion cannot serve; the message names the cause and the fix."""


def check_pipeline(pipe: Any, latent_channels: int) -> None:
    """Refuse SDXL, SD3, Flux and other non-UNet pipelines, pipelines that never start from noise, and latents that
    do not fit a module predicting `latent_channels`-channel SD-1.x/2.x latents."""
    name = type(pipe).__name__
    unet = getattr(pipe, "unet", None)
    if unet is None:
        kind = "a transformer pipeline (SD3, Flux, ...)" if getattr(pipe, "transformer", None) is not None else (
            "a pipeline without a UNet")
        raise SingDiffusersError(f"{name} is {kind}; {SERVED} (a UNet2DConditionModel with one CLIP text encoder)")
    if getattr(pipe, "text_encoder_2", None) is not None or unet.config.get("addition_embed_type") == "text_time":
        raise SingDiffusersError(
            f"{name} is an SDXL pipeline (two text encoders, size conditioning, another latent space); {SERVED}: "
            "use an SD-1.x or SD-2.x checkpoint's pipeline"
        )
    if "latents" not in inspect.signature(pipe.__call__).parameters:
        raise SingDiffusersError(
            f"{name} always starts from the input image noised to its strength, never from pure noise, and "
            "SingDiffusion replaces only a start from pure noise; use StableDiffusionPipeline, a ControlNet pipeline, "
            "or an inpaint pipeline at strength=1.0"
        )
    vae = getattr(pipe, "vae", None)
    channels = vae.config.latent_channels if vae is not None else unet.config.in_channels
    if channels != latent_channels:
        raise SingDiffusersError(
            f"{name} samples {channels}-channel latents and the module predicts {latent_channels}-channel latents; "
            "use a module trained for this latent space"
        )
    scale = vae.config.get("scaling_factor") if vae is not None else None
    if scale is not None and abs(scale - SD_LATENT_SCALE) > 1e-6:
        raise SingDiffusersError(
            f"{name}'s VAE scales latents by {scale:g}, SD-1.x/2.x by {SD_LATENT_SCALE}: another latent space, which "
            "the module was not trained on; use an SD-1.x or SD-2.x pipeline (or its VAE)"
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
            "not from pure noise, and SingDiffusion replaces only a start from pure noise; use strength=1.0 (the "
            "masked region is then sampled from nothing) or generate without SingDiffusion"
        )
