"""Stable Diffusion WebUI Forge (main at dfdcbab): where the loaded checkpoint, its schedule, its CLIP-L and the
GPU memory are.

Forge keeps A1111's front half but replaces ldm with its own engines (backend/diffusion_engine): sd_model.model,
cond_stage_model and alphas_cumprod are gone, the A1111-style is_sd* flags are all False for Flux and Chroma, and
every model on the GPU is a ModelPatcher that backend.memory_management loads, and evicts when it needs room.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from backend import memory_management
from backend.diffusion_engine.chroma import Chroma
from backend.diffusion_engine.flux import Flux
from backend.diffusion_engine.sd15 import StableDiffusion
from backend.diffusion_engine.sd20 import StableDiffusion2
from backend.diffusion_engine.sd35 import StableDiffusion3
from backend.diffusion_engine.sdxl import StableDiffusionXL, StableDiffusionXLRefiner
from backend.patcher.base import ModelPatcher

from sing_core.text.pretokenize import TRANSFORMERS4_FTFY

NAME = "Forge"
# Forge's SD-2 text goes through transformers' CLIPTokenizer (ftfy, "!" as the pad token, also where typed).
OPENCLIP_H_TOKENIZER = TRANSFORMERS4_FTFY
# Checked in order; a model Forge loads but none of these names (a later engine) is named by its class.
FAMILIES = ((StableDiffusion, "SD-1.x"), (StableDiffusion2, "SD-2.x"), (StableDiffusionXLRefiner, "SDXL refiner"),
            (StableDiffusionXL, "SDXL"), (StableDiffusion3, "SD3"), (Chroma, "Chroma"), (Flux, "Flux"))
PATCHER_ATTR = "_singdiffusion_patcher"


def family(sd_model) -> str:
    found = next((name for engine, name in FAMILIES if isinstance(sd_model, engine)), None)
    return found or type(getattr(sd_model, "model_config", None) or sd_model).__name__


def unet_model(sd_model):
    """Forge's KModel: .diffusion_model (the UNet), .predictor (the schedule), .computation_dtype."""
    return getattr(getattr(getattr(sd_model, "forge_objects", None), "unet", None), "model", None)


def unet(sd_model):
    """The UNet (backend.nn.unet.IntegratedUNet2DConditionModel); None for a model without one (Flux, SD3)."""
    return getattr(unet_model(sd_model), "diffusion_model", None)


def latent_channels(sd_model) -> int:
    # The UNet's output is the latent (an SD-1 UNet with 8 channels loads beside the fixed 4-channel VAE).
    found = unet(sd_model)
    if hasattr(found, "out_channels"):
        return int(found.out_channels)
    return int(getattr(getattr(getattr(sd_model, "forge_objects", None), "vae", None), "latent_channels", 4))


def text_engine(sd_model):
    """SD-1's ClassicTextProcessingEngine around its CLIP-L (forge_objects.clip.cond_stage_model.clip_l)."""
    return getattr(sd_model, "text_processing_engine", None) if isinstance(sd_model, StableDiffusion) else None


def text_width(sd_model) -> int | None:
    transformer = getattr(getattr(text_engine(sd_model), "text_encoder", None), "transformer", None)
    return getattr(getattr(transformer, "config", None), "hidden_size", None)


def clip_l(sd_model) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The checkpoint's CLIP-L on token ids [N, 77] -> last layer [N, 77, D]; None where it has none.

    Forge's own encoding path (its CLIP patcher loaded by the memory manager, its fp16 weights cast as it casts
    them) at CLIP skip 1: the module was trained on the last layer, whatever CLIP skip the webui uses."""
    engine = text_engine(sd_model)
    if engine is None:
        return None

    def encode(ids: torch.Tensor) -> torch.Tensor:
        memory_management.load_model_gpu(sd_model.forge_objects.clip.patcher)
        clip_skip, engine.clip_skip = engine.clip_skip, 1
        try:
            with torch.inference_mode():
                return engine.encode_with_transformers(ids).float()
        finally:
            engine.clip_skip = clip_skip

    return encode


def ztsnr_marker(sd_model) -> bool:
    """The checkpoint's ztsnr key (backend/loader.py sets model_config.ztsnr; processing then rescales the sigmas)."""
    return bool(getattr(getattr(sd_model, "model_config", None), "ztsnr", False))


def timestep_alphas_cumprod(p) -> torch.Tensor:
    """ᾱ(t) as Forge's timestep samplers compute it: 1/(σ² + 1) from the predictor of the UNet that runs (Zero
    Terminal SNR rewrites those sigmas for the generation), the same float32 expression."""
    sigmas = unet_model(p.sd_model).predictor.sigmas
    return 1.0 / (sigmas**2.0 + 1.0)


def hand_over(p, _target: torch.Tensor, value: torch.Tensor) -> None:
    """Forge's own way to set the start: p.modified_noise replaces the noise the hook saw (txt2img: the sampler's
    unit-noise input; img2img: the noise added to the image), and is reset to None once the sampler took it."""
    p.modified_noise = value


def device() -> torch.device:
    return memory_management.get_torch_device()


def gpu_dtype() -> torch.dtype:
    """The dtype the UNet computes in (its storage may be fp8 or nf4)."""
    from modules import shared

    unet = unet_model(shared.sd_model)
    return getattr(unet, "computation_dtype", None) or memory_management.get_computation_dtype(device())


def always_offloads() -> bool:
    return False  # Forge's memory manager decides what leaves the GPU, for its models and for ours


def patcher(model: torch.nn.Module, target: torch.device) -> ModelPatcher:
    """The ModelPatcher that makes `model` a citizen of Forge's memory manager (offloaded to the CPU)."""
    found = getattr(model, PATCHER_ATTR, None)
    if found is None or found.load_device != target:
        found = ModelPatcher(model, load_device=target, offload_device=torch.device("cpu"))
        setattr(model, PATCHER_ATTR, found)
    return found


@contextlib.contextmanager
def placed(model: torch.nn.Module, target: torch.device, offload: bool) -> Iterator[torch.nn.Module]:
    """`model` loaded on `target` by load_models_gpu (which first evicts what it must to make room, and counts it
    as used from then on); unloaded again afterwards when `offload`."""
    memory_management.load_models_gpu([patcher(model, target)])
    try:
        yield model
    finally:
        if offload:
            release(model)


def release(model: torch.nn.Module) -> None:
    """Take `model` off Forge's list of loaded models (back to the CPU): the memory is Forge's again."""
    found = getattr(model, PATCHER_ATTR, None)
    if found is None:
        return
    loaded = memory_management.current_loaded_models
    for index in range(len(loaded) - 1, -1, -1):
        if loaded[index].model is found:
            loaded.pop(index).model_unload()
    memory_management.soft_empty_cache()


def torch_gc() -> None:
    memory_management.soft_empty_cache()
