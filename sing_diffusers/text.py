"""The module's text conditioning in a diffusers setting: SD-1.5's CLIP-L as the reference reads it, or the pipeline's.

The released module was trained on SD-1.5's CLIP ViT-L/14 (77 tokens, max-length padding, last_hidden_state),
whatever the host is; the reference loads that tokenizer and encoder even for SD-2 hosts. A CLIP-L comes from a file
(sing_core's loaders: clip_l.safetensors, an SD-1.x checkpoint, a diffusers text_encoder/ folder, a module file with
the encoder bundled) or from an SD-1.x pipeline's own tokenizer and text encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from sing_core.text import ClipTextEncoder, ClipTokenizer
from sing_diffusers.refusals import SingDiffusersError


class TextEncoder(Protocol):
    """prompts → embeddings [B, 77, D] for the module (sing_core's ClipTextEncoder is one)."""

    def encode(self, prompts: Sequence[str]) -> torch.Tensor: ...


class PipelineClip:
    """An SD-1.x pipeline's CLIPTokenizer + CLIPTextModel, used exactly as the reference uses SD-1.5's: max-length
    padding with truncation, no attention mask, last_hidden_state."""

    def __init__(self, tokenizer: Any, text_encoder: Any):
        self.tokenizer, self.text_encoder = tokenizer, text_encoder

    @property
    def width(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(
            list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids
        with torch.inference_mode():
            return self.text_encoder(ids.to(self.text_encoder.device), attention_mask=None)[0]


def pipeline_clip(pipe: Any) -> PipelineClip | None:
    """The pipeline's own tokenizer and text encoder, or None where it has none (embeddings-only pipelines)."""
    tokenizer, text_encoder = getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)
    if tokenizer is None or text_encoder is None:
        return None
    return PipelineClip(tokenizer, text_encoder)


def clip_l_from(source: Any, width: int, device: torch.device, what: str) -> TextEncoder:
    """A CLIP-L for the module from what the user gave: a path, an SD-1.x pipeline or a ready text encoder."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        tokenizer = path / "tokenizer" if (path / "tokenizer").is_dir() else None  # a diffusers SD-1.x folder
        return ClipTextEncoder.load(path, device, torch.float32, tokenizer, expected_hidden_size=width)
    if hasattr(source, "encode") and not hasattr(source, "text_encoder"):
        return source
    clip = pipeline_clip(source)
    if clip is None:
        raise SingDiffusersError(
            f"{what}: clip_l must be a path to SD-1.5's CLIP-L (clip_l.safetensors, an SD-1.x checkpoint or its "
            f"text_encoder/ folder), an SD-1.x diffusers pipeline or a text encoder with .encode(prompts); got "
            f"{type(source).__name__}"
        )
    if clip.width != width:
        raise SingDiffusersError(
            f"{what}: the text encoder of {type(source).__name__} is {clip.width} wide, the module reads {width}-wide "
            "CLIP-L embeddings; give SD-1.5's CLIP-L (an SD-1.x pipeline or file), not an SD-2 one"
        )
    return clip


def bundled_clip_l(module_path: str, width: int, device: torch.device) -> TextEncoder | None:
    """The CLIP-L saved inside one of our module files (train --bundle-text-encoder), else None."""
    from sing_core import describe

    if not module_path or not describe(module_path).has_text_encoder:
        return None
    return ClipTextEncoder.load(module_path, device, torch.float32, ClipTokenizer.find(), expected_hidden_size=width)
