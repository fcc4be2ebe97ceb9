"""Pre-encoded training data: one .safetensors file of latents with their captions, so the VAE pass is done once.

Layout (format "sing_core.latents/1"):
- tensor "latents": [N, 4, H/8, W/8], float32 or float16: the host-space latent x0 = scale_factor · posterior mean
  of SD's VAE, for images resized and center-cropped to W×H;
- metadata (strings): "format"; "captions": a JSON list of N captions; "sources": a JSON list of N image paths
  relative to the encoded folder; "scale_factor" (0.18215); "resolution" ("WxH"); "vae" (the checkpoint's file name).

Any tool can write it: safetensors' save_file({"latents": x}, path, metadata={...}) with those keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from sing_core.weights import write_safetensors_atomically
from sing_train.images import DatasetError

FORMAT = "sing_core.latents/1"
MAX_METADATA_BYTES = 90_000_000  # safetensors refuses headers over 100 MB


@dataclass
class LatentDataset:
    latents: torch.Tensor  # [N, C, h, w]
    captions: list[str]
    sources: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)  # scale_factor, resolution, vae

    def __post_init__(self):
        if self.latents.ndim != 4:
            raise DatasetError(f"latents must be [N, C, h, w], got shape {list(self.latents.shape)}")
        if len(self.captions) != self.latents.shape[0]:
            raise DatasetError(f"{self.latents.shape[0]} latents but {len(self.captions)} captions; one each is needed")


def save_latents(path: str | Path, dataset: LatentDataset) -> Path:
    """Writes atomically (a temporary file, then a rename)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise DatasetError(f"{path}: the latents file must end in .safetensors")
    metadata = {
        **dataset.info,
        "format": FORMAT,
        "captions": json.dumps(dataset.captions, ensure_ascii=False),
        "sources": json.dumps(dataset.sources, ensure_ascii=False),
    }
    size = sum(len(v.encode()) for v in metadata.values())
    if size > MAX_METADATA_BYTES:
        raise DatasetError(
            f"{path}: the captions take {size / 1e6:.0f} MB, more than a safetensors header holds; split the image "
            "folder and encode the parts into separate files"
        )
    return write_safetensors_atomically({"latents": dataset.latents.contiguous()}, metadata, path)


def load_latents(path: str | Path) -> LatentDataset:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file; write it with `python -m sing_core encode IMAGE_FOLDER ...`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = list(handle.keys())
            if metadata.get("format") != FORMAT or "latents" not in keys:
                raise DatasetError(
                    f"{path}: not a latents file (format {metadata.get('format')!r}, tensors {keys[:3]}); expected "
                    f"format {FORMAT!r} with a 'latents' tensor, as `python -m sing_core encode` writes"
                )
            latents = handle.get_tensor("latents")
    except SafetensorError as error:
        raise DatasetError(f"{path}: not a readable .safetensors file ({error}); encode the images again") from error
    try:
        captions = json.loads(metadata["captions"])
        sources = json.loads(metadata.get("sources", "[]"))
    except (KeyError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: the 'captions' metadata is missing or not JSON ({error})") from error
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise DatasetError(f"{path}: 'captions' must be a JSON list of strings")
    if not latents.is_floating_point() or not torch.isfinite(latents).all():
        raise DatasetError(f"{path}: the latents are not finite floats ({latents.dtype}); encode the images again")
    info = {k: v for k, v in metadata.items() if k not in ("format", "captions", "sources")}
    try:
        return LatentDataset(latents, captions, sources, info)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from error
