"""Which ComfyUI models a start module can start, and where its text comes from.

Read from the MODEL's attributes (no ComfyUI import): its model config class (SD15, SD20, SDXL, SDXLRefiner, SD3,
Flux, ... and their subclasses), mapped to the host family names of sing_core.kinds, whose ModuleKind.refusal says
which module serves which family; its latent format (SD-1.x and SD-2.x share ComfyUI's "SD15" latent space, SDXL and
its ε fine-tunes "SDXL"); its model_sampling (the start is written for EPS / V_PREDICTION noise scaling on a
discrete schedule; a zero-terminal-SNR schedule needs no module) and the text width its conditioning has.
Everything else fails the prompt with what to do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sing_core.kinds import CLIP_L, OPENCLIP_H, SD, SDXL, SDXL_TEXT, ModuleKind

# ComfyUI's model config classes (comfy.supported_models; subclasses such as SSD1B, SD21UnclipH or the KOALA models
# are found through their base classes) → sing_core's host family names. Refiner before SDXL: it is not a subclass,
# but the order keeps the most specific name first should that change.
HOST_FAMILIES = (("SDXLRefiner", "SDXL refiner"), ("SDXL", "SDXL"), ("SD20", "SD-2.x"), ("SD15", "SD-1.x"),
                 ("SD3", "SD3"), ("Flux", "Flux"))
LATENT_FORMATS = {SD: "SD15", SDXL: "SDXL"}  # ComfyUI's latent format class of each module latent family
# ᾱ(t0) below 1e-6: ComfyUI's zero-terminal-SNR rescale sets ᾱ = 4.9e-8 at the top (σmax ≈ 4518), an SD/SDXL
# schedule has σmax 14.6; at SNR 0 the host's own start already is pure noise, which the module exists to fix.
ZTSNR_SIGMA_MAX = 1000.0
# Where a module of each text kind gets its text in ComfyUI when the model's own conditioning is another width.
TEXT_SOURCES = {
    CLIP_L: ("connect the Apply node's clip input from a CLIPLoader with SD-1.5's CLIP-L (clip_l.safetensors, type "
             "stable_diffusion) and its positive (and negative) from CLIPTextEncode nodes fed by that CLIP, or set "
             "module_prompt"),
    OPENCLIP_H: ("connect the Apply node's clip input from any SD-2.x checkpoint (CheckpointLoaderSimple's CLIP, or "
                 "a CLIPLoader of type sd2) and its positive from a CLIPTextEncode fed by that CLIP, or set "
                 "module_prompt"),
    SDXL_TEXT: "load an SDXL checkpoint: the module reads SDXL's own conditioning (2048 wide)",
}

# The CLIP to connect to the Apply node's clip input for a module of each text kind.
CLIP_SOURCES = {
    CLIP_L: ("an SD-1.x checkpoint's CLIP, or a CLIPLoader with SD-1.5's CLIP-L (clip_l.safetensors, type "
             "stable_diffusion)"),
    OPENCLIP_H: "any SD-2.x checkpoint's CLIP (CheckpointLoaderSimple), or a CLIPLoader of type sd2",
    SDXL_TEXT: "the SDXL checkpoint's own CLIP",
}


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    name: str  # ComfyUI's model config class: SD15, SD20, SDXL, SD3, Flux, ...
    latent_format: str
    latent_channels: int | None
    sampling: tuple[str, ...]  # the model_sampling's class and base class names
    text_width: int | None
    config_names: tuple[str, ...] = ()  # the model config's class and base class names

    @property
    def host_family(self) -> str:
        """sing_core's name of the model's family ("SD-1.x", "SDXL", "SDXL refiner", "SD3", ...), else the class."""
        names = self.config_names or (self.name,)
        for config_name, family in HOST_FAMILIES:
            if config_name in names:
                return family
        return self.name


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
        config_names=tuple(cls.__name__ for cls in type(config).__mro__) if config is not None else (),
    )


def sampling_refusal(sampling: tuple[str, ...], model_name: str) -> str | None:
    """The start is written for EPS / V_PREDICTION noise scaling on ComfyUI's discrete schedule."""
    if "EPS" in sampling and "ModelSamplingDiscrete" in sampling:
        return None
    kinds = ", ".join(name for name in sampling if name not in ("Module", "object")) or "unknown"
    return (f"SingDiffusion needs eps or v prediction on a discrete schedule; this {model_name} model samples with "
            f"{kinds} (a ModelSampling node changed it?): remove that node or the SingDiffusion Apply node")


def zero_terminal_snr(model_sampling: Any) -> str | None:
    """Why the model's schedule already starts at SNR 0 (ComfyUI's zsnr flag: a ztsnr-marked checkpoint or
    ModelSamplingDiscrete's zsnr), or None."""
    sigma_max = float(model_sampling.sigma_max)
    if getattr(model_sampling, "zsnr", False) or not math.isfinite(sigma_max) or sigma_max > ZTSNR_SIGMA_MAX:
        return (f"the model samples from zero terminal SNR (sigma_max {sigma_max:.4g}): its own start is already "
                "pure noise at SNR 0, which is what the module would give; the module is skipped")
    return None


def refusal(facts: ModelFacts, kind: ModuleKind, module_channels: int, module_width: int,
            own_text: bool) -> str | None:
    """Why the module cannot start this model; None when it can. own_text: the module's positive comes from the
    Apply node (its positive input or module_prompt), not from the sampler's conditioning."""
    refused = kind.refusal(facts.host_family)
    if refused:
        return f"SingDiffusion Apply ({facts.name} model, {kind.describe()}): {refused}"
    expected_format = LATENT_FORMATS[kind.family]
    if facts.latent_format != expected_format:
        return (f"SingDiffusion cannot start this {facts.name} model (latent format {facts.latent_format}; the module "
                f"predicts {expected_format} latents): remove the SingDiffusion Apply node for this model, or load a "
                f"checkpoint of the module's family")
    refused = sampling_refusal(facts.sampling, facts.name)
    if refused:
        return refused
    if facts.latent_channels is not None and facts.latent_channels != module_channels:
        return (f"the {facts.name} model uses {facts.latent_channels}-channel latents and the module predicts "
                f"{module_channels}-channel latents: remove the SingDiffusion Apply node for this model")
    if not own_text and facts.text_width is not None and facts.text_width != module_width:
        return (f"this {facts.name} model's conditioning is {facts.text_width} wide and the module reads "
                f"{module_width}-wide text ({kind.describe()}): {TEXT_SOURCES[kind.text]}")
    return None
