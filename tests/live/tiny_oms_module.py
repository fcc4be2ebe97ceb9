"""Write a tiny random One More Step module as its Hugging Face releases are laid out, for the live tier.

    model_index.json             sd_pipeline names the latent family (StableDiffusionXLPipeline: SDXL latents)
    oms_module/config.json       the time-free UNet's config (One More Step's "b" layout, reduced in width)
    oms_module/diffusion_pytorch_model.fp16.safetensors
    oms_text_encoder/config.json a pointer to the text encoder the module reads: SD-2.1's text_encoder (OpenCLIP
                                 ViT-H, "openclip_h") or SDXL's two encoders ("sdxl", the mixclip module)
    (no oms_tokenizer/ here: the tokenizer is the one the ViT-H encoder finds, "!"-padded)

The weights are sing_core's own module at random (the test interpreter's torch, no diffusers), its output
convolution's bias set so that x̂0 = −v has a latent mean near `mean_offset`, and its cross-attention weights
scaled up by `text_gain` so that the prompt visibly moves x̂0.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from sing_core import SingModule, UNetConfig

PIPELINES = {"sd": ["stable_diffusion", "StableDiffusionPipeline"],
             "sdxl": ["stable_diffusion_xl", "StableDiffusionXLPipeline"]}
TEXT_POINTERS = {
    "openclip_h": {"_name_or_path": "stabilityai/stable-diffusion-2-1", "subfolder": "text_encoder",
                   "architectures": ["CLIPTextModel"], "hidden_act": "gelu"},
    "sdxl": {"_class_name": "SDXLTextEncoders", "_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0",
             "text_encoder_2": "text_encoder_2"},
}
WEIGHTS = "diffusion_pytorch_model.fp16.safetensors"


def oms_config(cross_attention_dim: int) -> dict:
    return {
        "_class_name": "UNet2DConditionWoCTModel", "_diffusers_version": "0.23.1", "sample_size": None,
        "in_channels": 4, "out_channels": 4, "block_out_channels": [16, 32, 32], "layers_per_block": 1,
        "attention_head_dim": [1, 2, 2], "cross_attention_dim": cross_attention_dim, "norm_num_groups": 8,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn", "use_linear_projection": False,
    }


def write_tiny_oms_module(root: Path, *, family: str = "sdxl", text: str = "openclip_h", cross_attention_dim: int,
                          seed: int = 0, mean_offset: float = 1.0, text_gain: float = 4.0) -> dict:
    """The release folder at `root`; a report of what was written."""
    config = oms_config(cross_attention_dim)
    torch.manual_seed(seed)
    module = SingModule(UNetConfig.from_dict(config)).eval()
    with torch.no_grad():
        module.unet.conv_out.bias.fill_(-mean_offset)  # x̂0 = −v: a latent mean near +mean_offset
        for name, parameter in module.unet.named_parameters():
            if "attn2.to_k" in name or "attn2.to_v" in name:
                parameter.mul_(text_gain)
    (root / "oms_module").mkdir(parents=True, exist_ok=True)
    (root / "oms_text_encoder").mkdir(exist_ok=True)
    index = {"_class_name": "OMSPipeline", "_diffusers_version": "0.23.1",
             "oms_module": ["diffusers_patch", "OMSModel"], "oms_text_encoder": ["transformers", "CLIPTextModel"],
             "oms_tokenizer": ["transformers", "CLIPTokenizer"], "sd_pipeline": PIPELINES[family]}
    (root / "model_index.json").write_text(json.dumps(index))
    (root / "oms_module" / "config.json").write_text(json.dumps(config))
    pointer = {**TEXT_POINTERS[text], "hidden_size": cross_attention_dim}
    (root / "oms_text_encoder" / "config.json").write_text(json.dumps(pointer))
    state = {key: value.detach().half().contiguous() for key, value in module.unet.state_dict().items()}
    save_file(state, str(root / "oms_module" / WEIGHTS))
    return {"folder": str(root), "family": family, "text": text, "cross_attention_dim": cross_attention_dim,
            "parameters": sum(value.numel() for value in state.values())}
