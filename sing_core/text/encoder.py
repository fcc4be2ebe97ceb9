"""Prompts → a module's text conditioning [B, 77, D]: the tokenizer and the CLIP text model together (SD-1.5's
CLIP-L, D = 768, or SD-2's OpenCLIP ViT-H, D = 1024)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sing_core.kinds import CLIP_L
from sing_core.text.clip_text import ClipTextModel
from sing_core.text.text_checkpoint import load_text_encoder
from sing_core.text.tokenizer import ClipTokenizer


class ClipTextEncoder:
    """encode(prompts) → last_hidden_state [B, 77, D] on the model's device and dtype, as the SD-1.5 (or, with
    "!" padding and ViT-H, the SD-2) pipeline computes prompt_embeds (the negative prompt of a plain pipeline is "").
    `text_kind` (sing_core.kinds) says which conditioning it gives."""

    def __init__(self, tokenizer: ClipTokenizer, model: ClipTextModel, text_kind: str = CLIP_L):
        largest_id = max(tokenizer.token_ids.values())
        if largest_id >= model.config.vocab_size:
            raise ValueError(
                f"tokenizer {tokenizer.source} has ids up to {largest_id}, the text model only "
                f"{model.config.vocab_size} embeddings: they do not belong together"
            )
        if tokenizer.max_length > model.config.max_position_embeddings:
            raise ValueError(
                f"tokenizer pads to {tokenizer.max_length} tokens, the text model has "
                f"{model.config.max_position_embeddings} positions"
            )
        self.tokenizer, self.model, self.text_kind = tokenizer, model, text_kind

    @classmethod
    def load(
        cls,
        weights: str | Path,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        tokenizer: ClipTokenizer | str | Path | None = None,
        **loader_options: Any,
    ) -> ClipTextEncoder:
        """The text encoder in `weights` (load_text_encoder, which takes `loader_options`: config,
        expected_hidden_size) with a tokenizer: given, read from a path, or found by ClipTokenizer.find()."""
        if tokenizer is None:
            tokenizer = ClipTokenizer.find()
        elif not isinstance(tokenizer, ClipTokenizer):
            tokenizer = ClipTokenizer.from_path(tokenizer)
        return cls(tokenizer, load_text_encoder(weights, device, dtype, **loader_options))

    @property
    def hidden_size(self) -> int:
        """D, the width of the embeddings: what the module's cross_attention_dim must be."""
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return self.model.text_model.final_layer_norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.text_model.final_layer_norm.weight.dtype

    def encode(self, prompts: str | Sequence[str]) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(self.tokenizer(prompts).to(self.device))
