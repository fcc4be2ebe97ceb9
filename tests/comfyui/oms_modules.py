"""Random modules of One More Step's release layout (model_index.json + oms_module/ + oms_text_encoder/) for SDXL
latents, as the live ComfyUI tier installs them: one reading SD-2's OpenCLIP ViT-H (1024, as h1t/oms_b_openclip_xl)
and one reading SDXL's own conditioning (2048, as h1t/oms_l_mixclip_xl), reduced in width."""

from __future__ import annotations

from pathlib import Path

import torch
from unet_helpers import OPENCLIP_H_POINTER, TINY_OMS, write_oms_release

from sing_core import SingModule, UNetConfig

MIXCLIP_POINTER = {"_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0", "architectures": ["SDXLTextEncoders"],
                   "hidden_size": 2048}


def write_oms_module(folder: Path, text_width: int, seed: int, family: str = "sdxl", text_gain: float = 30.0) -> Path:
    """A random module whose cross-attention outputs are scaled by text_gain: a random module barely reads its text,
    and the tests must tell one prompt's start from another's."""
    config = {**TINY_OMS, "cross_attention_dim": text_width}
    torch.manual_seed(seed)
    module = SingModule(UNetConfig.from_dict(config)).eval()
    state = module.unet.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if ".attn2.to_out.0." in name:
                tensor.mul_(text_gain)
    pointer = {**OPENCLIP_H_POINTER, "hidden_size": text_width} if text_width == 1024 else MIXCLIP_POINTER
    return write_oms_release(folder, state, family=family, config=config, text_config=pointer)
