"""Which of the user's files holds a text kind's encoder, read from headers only: what a host's "Automatic" choice
of the text encoder file runs on (for openclip_h: any SD-2.x checkpoint among the user's checkpoints).

Nothing is loaded: a .safetensors file's header gives its keys and shapes; a pickle is opened as TensorFile opens it
(weights_only, memory-mapped, so its tensors are not read).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sing_core.text.tensor_files import TensorFile, WeightsFileError
from sing_core.text.text_checkpoint import resolve_weights_path
from sing_core.text.text_layouts import text_tower

TOKEN_EMBEDDING = "text_model.embeddings.token_embedding.weight"


def text_encoder_width(text_kind: str, path: str | Path) -> int | None:
    """The width of the `text_kind` text tower in `path` (a weights file or a diffusers/HF folder), or None where
    it holds none (another model, no text tower, unreadable)."""
    try:
        weights_path, _ = resolve_weights_path(Path(path), text_kind)
        file = TensorFile(weights_path)
        source = text_tower(file, text_kind).mapping.get(TOKEN_EMBEDDING)
        shape = file.shape(source.key) if source else ()
    except WeightsFileError:  # TextEncoderLoadError included: not this kind's file
        return None
    return shape[1] if len(shape) == 2 else None


def find_text_encoder(text_kind: str, candidates: Iterable[str | Path], width: int) -> Path | None:
    """The first of `candidates`, in the caller's order, that holds a `text_kind` text tower `width` wide (the
    module's cross_attention_dim); None when none does."""
    for candidate in candidates:
        if text_encoder_width(text_kind, candidate) == width:
            return Path(candidate)
    return None
