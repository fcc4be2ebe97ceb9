"""The network a training run starts from: a named preset, a diffusers-style config.json, or an existing module.

sd15 is SD-1.5's UNet2DConditionModel shape (the reference's module is a UNet of the host's shape with the time
conditioning removed): 320/640/1280/1280 channels, 8 heads, CLIP-L's 768-wide text. tiny is for smoke tests and CPU
experiments; its text width follows the text encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

from sing_core.config import ConfigError, UNetConfig

SD15 = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
}
TINY = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "attention_head_dim": 4,
    "cross_attention_dim": None,  # the text encoder's width
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "norm_num_groups": 8,
}
# One More Step's "b" module (h1t/oms_b_openclip_15_21 and _xl, oms_module/config.json): 154M parameters with
# OpenCLIP ViT-H's 1024-wide text; its text width follows the text encoder here (2048 for SDXL's own).
OMS_B = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [160, 320, 640],
    "layers_per_block": 2,
    "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 32,
}
PRESETS = {"sd15": SD15, "oms-b": OMS_B, "tiny": TINY}


def preset_text_width(name: str) -> int | None:
    """The text width a preset requires, or None when it takes the text encoder's."""
    return PRESETS[name]["cross_attention_dim"]


def preset_config(name: str, text_width: int) -> UNetConfig:
    values = dict(PRESETS[name])
    if values["cross_attention_dim"] is None:
        values["cross_attention_dim"] = text_width
    return UNetConfig.from_dict(values, source=f"preset {name}")


def config_from_file(path: str | Path) -> UNetConfig:
    """A diffusers UNet2DConditionModel config.json (the time-embedding keys are accepted and ignored)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"--config {path}: no such file; pass a UNet config.json") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"--config {path}: not a readable JSON file ({error})") from error
    return UNetConfig.from_dict(values, source=str(path))
