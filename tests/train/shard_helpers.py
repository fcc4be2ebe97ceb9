"""Tiny webdataset shards as img2dataset writes them: KEY.png + KEY.txt + KEY.json, dark images captioned "black",
bright ones "white"."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from PIL import Image


def png_bytes(level: int, size: int, seed: int) -> bytes:
    """A size × size grey image around `level` with a little texture, so no two images are the same."""
    pixels = bytes(max(0, min(255, level + ((x * 7 + y * 13 + seed * 31) % 21) - 10)) for y in range(size)
                   for x in range(size) for _ in range(3))
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
