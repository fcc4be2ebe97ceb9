"""Which ComfyUI models a SingDiffusion module can start: SD-1.x and SD-2.x, eps or v prediction.

Read from the MODEL's attributes (no ComfyUI import): its latent format (SD-1.x and SD-2.x share ComfyUI's "SD15"
latent space, the module's), its model_sampling (the start is written for EPS / V_PREDICTION noise scaling on a
discrete schedule) and the text width its conditioning has. Everything else fails the prompt with what to do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SERVED_LATENT_FORMATS = ("SD15",)  # ComfyUI's latent format of SD-1.x and SD-2.x models
FIX = ("remove the SingDiffusion Apply node for this model, or load an SD-1.x / SD-2.x checkpoint; the module "
       "predicts SD-1.x/2.x latents")


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    name: str  # ComfyUI's model config class: SD15, SD20, SDXL, SD3, Flux, ...
    latent_format: str
    latent_channels: int | None
    sampling: tuple[str, ...]  # the model_sampling's class and base class names
    text_width: int | None


def sampling_names(model_sampling: Any) -> tuple[str, ...]:
    return tuple(cls.__name__ for cls in type(model_sampling).__mro__)


def facts_of(model: Any) -> ModelFacts:
    """What a MODEL (a ModelPatcher around a BaseModel) is, from its attributes and its object patches (the
    ModelSampling* nodes replace model_sampling that way)."""
    base = getattr(model, "model", None)
    config = getattr(base, "model_config", None)
    patched = getattr(model, "get_model_object", None)
    latent_format = patched("latent_format") if patched else getattr(base, "latent_format", None)
    sampling = patched("model_sampling") if patched else getattr(base, "model_sampling", None)
    unet_config = getattr(config, "unet_config", None) or {}
    return ModelFacts(
        name=type(config).__name__ if config is not None else type(base).__name__,
        latent_format=type(latent_format).__name__,
        latent_channels=getattr(latent_format, "latent_channels", None),
        sampling=sampling_names(sampling),
        text_width=unet_config.get("context_dim"),
    )


def sampling_refusal(sampling: tuple[str, ...], model_name: str) -> str | None:
    """The start is written for EPS / V_PREDICTION noise scaling on ComfyUI's discrete schedule."""
    if "EPS" in sampling and "ModelSamplingDiscrete" in sampling:
        return None
    kinds = ", ".join(name for name in sampling if name not in ("Module", "object")) or "unknown"
    return (f"SingDiffusion needs eps or v prediction on a discrete schedule; this {model_name} model samples with "
            f"{kinds} (a ModelSampling node changed it?): remove that node or the SingDiffusion Apply node")


def refusal(facts: ModelFacts, module_channels: int, module_width: int, own_text: bool) -> str | None:
    """Why the module cannot start this model; None when it can. own_text: the Apply node's positive is connected."""
    if facts.latent_format not in SERVED_LATENT_FORMATS:
        return f"SingDiffusion cannot start a {facts.name} model (latent format {facts.latent_format}): {FIX}"
    refused = sampling_refusal(facts.sampling, facts.name)
    if refused:
        return refused
    if facts.latent_channels is not None and facts.latent_channels != module_channels:
        return (f"the {facts.name} model uses {facts.latent_channels}-channel latents and the module predicts "
                f"{module_channels}-channel latents: {FIX}")
    if not own_text and facts.text_width is not None and facts.text_width != module_width:
        return (f"this {facts.name} model's conditioning is {facts.text_width} wide and the module reads "
                f"{module_width}-wide text (SD-1.5's CLIP-L): connect the Apply node's positive and negative from "
                "CLIPTextEncode fed by a CLIPLoader with clip_l.safetensors (type stable_diffusion)")
    return None
