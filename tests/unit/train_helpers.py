"""Tiny training data for the train/encode tests: SD-1-layout checkpoints, PNG folders, latents files."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

from sing_core.text import ClipTextConfig, ClipTextModel
from sing_core.vae import VaeEncoder, VaeEncoderConfig
from sing_train.latents import LatentDataset, save_latents

TINY_VAE = VaeEncoderConfig(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1, z_channels=4)  # 8× down, like SD's
TINY_CLIP = ClipTextConfig(hidden_size=64, intermediate_size=37, num_hidden_layers=2, num_attention_heads=1)
# A SingUNet small enough to train in a second on one CPU thread; 64 = TINY_CLIP's width.
SMALL_UNET = {
    "sample_size": 8,
    "block_out_channels": [16, 32],
    "layers_per_block": 1,
    "attention_head_dim": 2,
    "cross_attention_dim": 64,
    "norm_num_groups": 8,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
}
UNET_KEY = "model.diffusion_model.input_blocks.0.0.weight"  # one UNet tensor, so the file looks like a checkpoint


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An RGB PNG of width × height from its pixel bytes (rows top to bottom), written by Pillow."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), bytes(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_vae_state(seed: int = 0, config: VaeEncoderConfig = TINY_VAE) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return VaeEncoder(config).state_dict()


def tiny_clip_state(seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return ClipTextModel(TINY_CLIP).state_dict()


def write_sd1_checkpoint(
    path: Path, *, vae: bool = True, text: bool = True, sdxl: bool = False, vae_config=TINY_VAE
) -> Path:
    """An SD-1-layout checkpoint: first_stage_model.* (encoder + a decoder key), cond_stage_model.transformer.*."""
    tensors = {UNET_KEY: torch.zeros(8, 4, 3, 3)}
    if vae:
        tensors |= {f"first_stage_model.{k}": v for k, v in tiny_vae_state(config=vae_config).items()}
        tensors["first_stage_model.decoder.conv_in.weight"] = torch.zeros(32, 4, 3, 3)
    if text:
        tensors |= {f"cond_stage_model.transformer.{k}": v for k, v in tiny_clip_state().items()}
    if sdxl:
        tensors["conditioner.embedders.1.model.ln_final.weight"] = torch.ones(8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def write_image_folder(folder: Path, size: int = 64) -> list[str]:
    """Six PNGs (solid black, grey, white and three gradients, non-square ones too) with captions; returns those."""
    folder.mkdir(parents=True, exist_ok=True)
    items = [
        ("a/black.png", "solid black background", size, size, lambda x, y: (0, 0, 0)),
        ("a/white.png", "solid white background", size, size, lambda x, y: (255, 255, 255)),
        ("grey.png", "solid grey background", size + 16, size, lambda x, y: (128, 128, 128)),
        ("ramp.png", "a red ramp", size, size + 32, lambda x, y: (4 * x % 256, 0, 0)),
        ("stripes.png", "blue stripes", size, size, lambda x, y: (0, 0, 255 * (y // 4 % 2))),
        ("dots.png", "", size, size, lambda x, y: (200, 200, 0) if (x * y) % 7 == 0 else (20, 40, 60)),
    ]
    for name, caption, width, height, colour in items:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = bytearray()
        for y in range(height):
            for x in range(width):
                pixels += bytes(colour(x, y))
        path.write_bytes(encode_png(width, height, pixels))
        path.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    return [caption for _, caption, *_ in sorted(items, key=lambda item: item[0])]


def write_latents(path: Path, count: int = 24, side: int = 8, channels: int = 4, scale: str = "0.18215") -> Path:
    """Latents whose mean is set by the caption (three captions, levels -1, 0, 1) with some texture."""
    generator = torch.Generator().manual_seed(5)
    levels = {"pitch black": -1.0, "mid grey": 0.0, "bright white": 1.0}
    captions = [list(levels)[i % 3] for i in range(count)]
    latents = torch.stack([levels[c] + 0.3 * torch.randn(channels, side, side, generator=generator) for c in captions])
    info = {"resolution": f"{8 * side}x{8 * side}", "vae": "synthetic"}
    if scale is not None:
        info["scale_factor"] = scale
    return save_latents(path, LatentDataset(latents, captions, [f"{i}.png" for i in range(count)], info))
