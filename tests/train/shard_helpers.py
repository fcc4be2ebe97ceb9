"""Tiny webdataset shards as img2dataset writes them: KEY.png + KEY.txt + KEY.json, dark images captioned "black",
bright ones "white"; and the tiny SD-1 checkpoint whose VAE makes their difference visible."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from train_helpers import write_sd1_checkpoint

# The random tiny VAE's posterior means are ~0.04 wide where a trained SD VAE's × 0.18215 are ~1: its quant_conv is
# scaled up so that the brightness it encodes is a signal a tiny module learns in tens of steps, not thousands.
LATENT_GAIN = 25.0
SAMPLES_PER_SHARD = 12


def write_brightness_checkpoint(path: Path) -> Path:
    write_sd1_checkpoint(path)
    tensors = load_file(str(path))
    for key in ("first_stage_model.quant_conv.weight", "first_stage_model.quant_conv.bias"):
        tensors[key] = tensors[key] * LATENT_GAIN
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def solid_pixels(level: int, size: int) -> torch.Tensor:
    """The [-1, 1] RGB tensor the trainer reads from png_bytes(level, size, ...) without texture."""
    return torch.full((3, size, size), level / 127.5 - 1.0)


def png_bytes(level: int, size: int, seed: int, texture: int = 0) -> bytes:
    """A size × size grey image at `level`, with ±texture levels of a seeded pattern (0: solid)."""
    pixels = bytes(max(0, min(255, level + ((x * 7 + y * 13 + seed * 31) % (2 * texture + 1)) - texture))
                   for y in range(size) for x in range(size) for _ in range(3))
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, *, shards: int, per_shard: int, size: int = 64, corrupt: tuple[str, ...] = (),
                 small: tuple[str, ...] = ()) -> list[Path]:
    """Shards 00000.tar … with samples KEY = 'SS-NNN'; even NNN dark ("black"), odd bright ("white"). Keys in
    `corrupt` get PNG bytes that are no image; keys in `small` a .json saying the original was half the size."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(shards):
        path = folder / f"{shard:05d}.tar"
        with tarfile.open(path, "w") as tar:
            for item in range(per_shard):
                key = f"{shard:02d}-{item:03d}"
                bright = item % 2 == 1
                image = b"\x89PNG not an image" if key in corrupt else png_bytes(230 if bright else 25, size, item)
                add_member(tar, f"{key}.png", image)
                add_member(tar, f"{key}.txt", b"white" if bright else b"black")
                side = size // 2 if key in small else size
                meta = {"key": key, "width": size, "height": size, "original_width": side, "original_height": side}
                add_member(tar, f"{key}.json", json.dumps(meta).encode())
        paths.append(path)
    return paths
