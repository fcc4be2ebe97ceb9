"""AUTOMATIC1111 v1.10.1: where the loaded checkpoint, its schedule, its CLIP-L and the GPU memory are.

The model is ldm's LatentDiffusion (sd_model.model.diffusion_model, sd_model.alphas_cumprod); the webui knows no
memory manager beyond --lowvram/--medvram, which move its own models on and off the GPU around each use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from modules import devices, lowvram, shared

from sing_core.text.pretokenize import OPEN_CLIP

NAME = "AUTOMATIC1111"
# The tokenizer SD-2 checkpoints get here (open_clip's SimpleTokenizer): a typed "!" stays the word "!", where
# transformers' tokenizer with "!" as its pad token turns it into the pad id. The module's ViT-H text follows the host.
OPENCLIP_H_TOKENIZER = OPEN_CLIP


def family(sd_model) -> str:
    for flag, name in (("is_sdxl", "SDXL"), ("is_sd3", "SD3"), ("is_sd2", "SD-2.x"), ("is_sd1", "SD-1.x")):
        if getattr(sd_model, flag, False):
            return name
    return type(sd_model).__name__


def unet(sd_model):
    """The UNet (ldm's or, for SDXL, sgm's openaimodel.UNetModel); None for a model without one."""
    return getattr(getattr(sd_model, "model", None), "diffusion_model", None)


def latent_channels(sd_model) -> int:
    # The UNet's output is the latent; sd_model.latent_channels defaults to 4 for any model the webui does not know.
    return int(getattr(unet(sd_model), "out_channels", getattr(sd_model, "latent_channels", 4)))


def ztsnr_marker(_sd_model) -> bool:
    """v1.10.1 reads no ztsnr marker from checkpoints; its "Zero Terminal SNR" option shows in the schedule."""
    return False


def clip_l_transformer(sd_model):
    """SD-1's CLIP-L, a transformers CLIPTextModel inside the webui's FrozenCLIPEmbedder; None for other models."""
    if not getattr(sd_model, "is_sd1", False):
        return None
    return getattr(getattr(getattr(sd_model, "cond_stage_model", None), "wrapped", None), "transformer", None)


def text_width(sd_model) -> int | None:
    return getattr(getattr(clip_l_transformer(sd_model), "config", None), "hidden_size", None)


def clip_l(sd_model) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The checkpoint's CLIP-L on token ids [N, 77] -> last layer [N, 77, D]; None where it has none."""
    transformer = clip_l_transformer(sd_model)
    if transformer is None:
        return None

    def encode(ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return transformer(input_ids=ids.to(devices.device)).last_hidden_state

    return encode


def timestep_alphas_cumprod(p) -> torch.Tensor:
    """ᾱ(t) as the webui's timestep samplers read it (Zero Terminal SNR rewrites it on the model)."""
    return p.sd_model.alphas_cumprod


def hand_over(p, target: torch.Tensor, value: torch.Tensor) -> None:
    """The start reaches the sampler through the tensor the hook was given, rewritten in place."""
    target.copy_(value.to(target.dtype))


def device() -> torch.device:
    return devices.get_device_for("singdiffusion")


def gpu_dtype() -> torch.dtype:
    """The UNet's dtype (fp32 under --no-half)."""
    return devices.dtype_unet


def always_offloads() -> bool:
    """--lowvram/--medvram: nothing stays on the GPU between uses."""
    return lowvram.is_enabled(shared.sd_model)


@contextlib.contextmanager
def placed(model: torch.nn.Module, target: torch.device, offload: bool) -> Iterator[torch.nn.Module]:
    """`model` on `target` for the block; back to the CPU afterwards when `offload`."""
    if always_offloads():
        lowvram.send_everything_to_cpu()  # make room, as the webui does before moving one of its own models
    model.to(target)
    try:
        yield model
    finally:
        if offload:
            model.to("cpu")
            devices.torch_gc()


def release(_model: torch.nn.Module) -> None:
    """Nothing of ours is registered with the webui: dropping the last reference frees it."""


def torch_gc() -> None:
    devices.torch_gc()
