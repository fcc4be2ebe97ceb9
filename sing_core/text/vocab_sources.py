"""Where a CLIP vocabulary may already be on this machine; nothing is downloaded.

- Hugging Face hub caches of the repositories whose vocabulary is CLIP's (openai/clip-vit-large-patch14 is what
  A1111 loads for SD-1.x models; diffusers users have the SD-1.5 and SD-2.x repositories' tokenizer/ folders, One
  More Step users its oms_tokenizer/).
- bpe_simple_vocab_16e6.txt.gz inside the `open_clip` (open-clip-torch, installed with A1111) or `clip` (openai-clip)
  package, found with importlib.util.find_spec, which locates a package without running its __init__ (both import
  torchvision on import).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

BPE_GZ_NAME = "bpe_simple_vocab_16e6.txt.gz"
BPE_GZ_PACKAGES = ("open_clip", "clip")
# (hub repository folder, sub-folder of a snapshot that holds vocab.json + merges.txt)
HUB_TOKENIZER_FOLDERS = (
    ("models--openai--clip-vit-large-patch14", ""),
    ("models--runwayml--stable-diffusion-v1-5", "tokenizer"),
    ("models--stable-diffusion-v1-5--stable-diffusion-v1-5", "tokenizer"),
    ("models--CompVis--stable-diffusion-v1-4", "tokenizer"),
    # SD-2.x and One More Step's releases: the same vocabulary (their "!" padding is the tokenizer's pad_token).
    ("models--stabilityai--stable-diffusion-2-1", "tokenizer"),
    ("models--stabilityai--stable-diffusion-2-1-base", "tokenizer"),
    ("models--stabilityai--stable-diffusion-2", "tokenizer"),
    ("models--stabilityai--stable-diffusion-2-base", "tokenizer"),
    ("models--h1t--oms_b_openclip_15_21", "oms_tokenizer"),
    ("models--h1t--oms_b_openclip_xl", "oms_tokenizer"),
)


def hub_cache_dirs() -> list[Path]:
    """The hub cache folders huggingface_hub would use, most specific setting first, without duplicates."""
    candidates = [os.environ.get("HF_HUB_CACHE"), os.environ.get("HUGGINGFACE_HUB_CACHE")]
    if os.environ.get("HF_HOME"):
        candidates.append(str(Path(os.environ["HF_HOME"]) / "hub"))
    xdg = os.environ.get("XDG_CACHE_HOME")
    candidates.append(str(Path(xdg) / "huggingface" / "hub") if xdg else str(Path.home() / ".cache/huggingface/hub"))
    seen: list[Path] = []
    for candidate in candidates:
        if candidate and Path(candidate) not in seen:
            seen.append(Path(candidate))
    return seen


def hub_tokenizer_folders(cache_dirs: list[Path] | None = None) -> list[Path]:
    """Snapshot folders of the known repositories that hold vocab.json + merges.txt (or tokenizer.json)."""
    found = []
    for cache in hub_cache_dirs() if cache_dirs is None else cache_dirs:
        for repo, sub in HUB_TOKENIZER_FOLDERS:
            snapshots = cache / repo / "snapshots"
            if not snapshots.is_dir():
                continue
            for snapshot in sorted(snapshots.iterdir()):
                folder = snapshot / sub if sub else snapshot
                has_pair = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
                if has_pair or (folder / "tokenizer.json").is_file():
                    found.append(folder)
    return found


def package_bpe_gz_files(packages: tuple[str, ...] = BPE_GZ_PACKAGES) -> list[Path]:
    """bpe_simple_vocab_16e6.txt.gz of each installed package that ships it (the packages are not imported)."""
    found = []
    for name in packages:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / BPE_GZ_NAME
            if candidate.is_file():
                found.append(candidate)
    return found
