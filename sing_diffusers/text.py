"""The text a module reads, in a diffusers setting: from a file, from a pipeline, or from a ready encoder.

Each module kind reads one text (sing_core.kinds): SD-1.5's CLIP-L (SingDiffusion's release), SD-2's OpenCLIP ViT-H
(One More Step's b modules; the diffusers SD-2 text_encoder, whose last hidden state is what OMS reads) or SDXL's own
conditioning (2048 wide: an SDXL pipeline's encode_prompt). A source is
- a path: a CLIP-L file or folder (sing_core's ClipTextEncoder), or for ViT-H an SD-2.x checkpoint, a diffusers SD-2
  folder or its text_encoder/, or a standalone file (sing_core.text.open_text_encoder), with the tokenizer from the
  `tokenizer/` folder beside it, else the OMS release's `oms_tokenizer/`, else SD-2's vocabulary with "!" padding;
- a pipeline: its tokenizer + text encoder, used as the references use theirs (max-length padding with truncation,
  no attention mask, last hidden state), or for SDXL text an SDXL pipeline's own encode_prompt;
- anything with .encode(prompts) → [B, 77, D].
Only the width is checked, against the module's cross_attention_dim.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from sing_core import text as core_text
from sing_core.kinds import CLIP_L, SDXL_TEXT, TEXT_NAMES, ModuleKind
from sing_core.text import ClipTextEncoder, ClipTokenizer
from sing_diffusers.refusals import SingDiffusersError

OMS_TOKENIZER = "oms_tokenizer"  # sing_core.oms_folder.TOKENIZER_FOLDER


class TextEncoder(Protocol):
    """prompts → embeddings [B, 77, D] for the module (sing_core's ClipTextEncoder is one)."""

    def encode(self, prompts: Sequence[str]) -> torch.Tensor: ...


class PipelineText:
    """A pipeline's CLIPTokenizer + CLIPTextModel (SD-1's CLIP-L, SD-2's OpenCLIP ViT-H), used exactly as the
    references use theirs: max-length padding with truncation, no attention mask, last_hidden_state."""

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


class PipelineEncodePrompt:
    """A pipeline's own encode_prompt, one prompt list at a time without guidance: SDXL's 2048-wide conditioning
    for SDXL-text modules, or text_encoder="pipeline" (textual inversion, clip_skip). "" is encoded as a prompt like
    any other: force_zeros_for_empty_prompt concerns the pipeline's negative side, not the module's."""

    def __init__(self, pipe: Any, clip_skip: int | None = None):
        self.pipe, self.clip_skip = pipe, clip_skip

    @property
    def width(self) -> int:
        encoders = (getattr(self.pipe, "text_encoder", None), getattr(self.pipe, "text_encoder_2", None))
        return sum(int(encoder.config.hidden_size) for encoder in encoders if encoder is not None)

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        with torch.inference_mode():
            return self.pipe.encode_prompt(
                prompt=list(prompts), device=self.pipe._execution_device, num_images_per_prompt=1,
                do_classifier_free_guidance=False, clip_skip=self.clip_skip,
            )[0]


def is_sdxl(pipe: Any) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def pipeline_text(pipe: Any) -> PipelineText | None:
    """The pipeline's own tokenizer and first text encoder, or None where it has none (embeddings-only pipelines)."""
    tokenizer, text_encoder = getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)
    if tokenizer is None or text_encoder is None:
        return None
    return PipelineText(tokenizer, text_encoder)


def pipeline_own_text(pipe: Any, kind: ModuleKind) -> PipelineText | PipelineEncodePrompt | None:
    """What the pipeline itself can lend the module: SDXL's encode_prompt for SDXL text, else its first encoder."""
    if kind.text == SDXL_TEXT:
        return PipelineEncodePrompt(pipe) if is_sdxl(pipe) and getattr(pipe, "text_encoder", None) else None
    return pipeline_text(pipe)


def width_of(encoder: Any) -> int | None:
    for name in ("width", "hidden_size"):
        value = getattr(encoder, name, None)
        if isinstance(value, int):
            return value
    return None


def check_width(encoder: Any, width: int, kind: ModuleKind, what: str, given: Any = None) -> Any:
    found = width_of(encoder)
    if found is not None and found != width:
        name = type(encoder if given is None else given).__name__
        raise SingDiffusersError(
            f"{what}: the text encoder of {name} is {found} wide and the module reads "
            f"{width}-wide embeddings ({TEXT_NAMES[kind.text]}); {advice(kind)}"
        )
    return encoder


def advice(kind: ModuleKind) -> str:
    """What to give as text_encoder= for a module of this kind."""
    if kind.text == CLIP_L:
        return ("give SD-1.5's CLIP-L (text_encoder= or clip_l=): a clip_l.safetensors, an SD-1.x checkpoint, a "
                "diffusers SD-1.x folder or its text_encoder/, or an SD-1.x pipeline")
    if kind.text == SDXL_TEXT:
        return "use it with an SDXL pipeline (its own two text encoders), or give text_encoder=that SDXL pipeline"
    return ("give SD-2's OpenCLIP ViT-H: an SD-2.x checkpoint file, a diffusers SD-2.x folder (text_encoder/ and "
            "tokenizer/ are enough) or its text_encoder/, a standalone text encoder file, or an SD-2.x pipeline")


def oms_tokenizer(module_path: str) -> Path | None:
    """The OMS release's oms_tokenizer/, for an encoder with no tokenizer/ folder beside it (open_text_encoder looks
    there first, and without either uses SD-2's vocabulary with "!" padding)."""
    folder = Path(module_path) / OMS_TOKENIZER if module_path else None
    return folder if folder is not None and folder.is_dir() else None


def text_from(
    source: Any, kind: ModuleKind, width: int, device: torch.device, module_path: str, what: str
) -> TextEncoder:
    """The module's text encoder from what the user gave: a path, a pipeline or a ready encoder."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if kind.text == SDXL_TEXT:
            raise SingDiffusersError(
                f"{what}: the module reads SDXL's own conditioning, which has no file of its own; {advice(kind)}"
            )
        if kind.text == CLIP_L:
            tokenizer = path / "tokenizer" if (path / "tokenizer").is_dir() else None  # a diffusers SD-1.x folder
            return ClipTextEncoder.load(path, device, torch.float32, tokenizer, expected_hidden_size=width)
        encoder = core_text.open_text_encoder(kind.text, path, device=device, dtype=torch.float32,
                                              tokenizer=oms_tokenizer(module_path))
        return check_width(encoder, width, kind, what)
    if hasattr(source, "encode") and not hasattr(source, "text_encoder"):
        return check_width(source, width, kind, what)
    own = pipeline_own_text(source, kind) if hasattr(source, "text_encoder") else None
    if own is None:
        raise SingDiffusersError(
            f"{what}: text_encoder must be a path, a diffusers pipeline or an object with .encode(prompts), and "
            f"{type(source).__name__} cannot serve as one for this module; {advice(kind)}"
        )
    return check_width(own, width, kind, what, given=source)


def bundled_clip_l(module_path: str, width: int, device: torch.device) -> TextEncoder | None:
    """The CLIP-L saved inside one of our module files (train --bundle-text-encoder), else None."""
    from sing_core import describe

    if not module_path or not describe(module_path).has_text_encoder:
        return None
    return ClipTextEncoder.load(module_path, device, torch.float32, ClipTokenizer.find(), expected_hidden_size=width)
