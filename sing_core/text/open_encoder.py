"""open_text_encoder: the text encoder a module's text kind reads, from the file or folder the user points to.

- "clip_l": SD-1.5's CLIP ViT-L/14 (last layer, EOS padding), as ClipTextEncoder.load has always read it.
- "openclip_h": SD-2's OpenCLIP ViT-H/14 as SD-2 conditions on it (the penultimate of open_clip's 24 blocks, which
  is diffusers' 23-layer text_encoder's last, then the final norm), tokens padded with "!" (id 0). The tokenizer
  comes from the tokenizer/ folder beside the given encoder (a diffusers SD-2 folder or its text_encoder/), else from
  `tokenizer` (a path: One More Step's oms_tokenizer/, say), else from the CLIP vocabulary ClipTokenizer.find()
  finds; whichever it is, padding is "!".
- "sdxl": SDXL's own conditioning, which the SDXL checkpoint computes (the "host" text source): no standalone file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sing_core.kinds import CLIP_L, OPENCLIP_H, SDXL_TEXT, TEXT_KINDS, TEXT_WIDTHS, ModuleKindError
from sing_core.text.encoder import ClipTextEncoder
from sing_core.text.pretokenize import TRANSFORMERS4_FTFY
from sing_core.text.text_checkpoint import load_text_encoder
from sing_core.text.text_layouts import WHERE_TO_GET, TextEncoderLoadError
from sing_core.text.tokenizer import MAX_LENGTH, SD2_PAD_TOKEN, ClipTokenizer

PAD_TOKENS = {CLIP_L: "<|endoftext|>", OPENCLIP_H: SD2_PAD_TOKEN}
SDXL_HAS_NO_FILE = (
    "text kind 'sdxl' (SDXL's CLIP-L ⊕ OpenCLIP bigG conditioning, 2048 wide) is the SDXL checkpoint's own "
    'conditioning: the module reads what the host\'s SDXL model encodes (the "host" text source), and there is no '
    "standalone text encoder file for it. Run this module on an SDXL checkpoint and let the host encode the prompt."
)


def tokenizer_folders_beside(path: Path) -> list[Path]:
    """tokenizer/ of a diffusers folder given whole, or beside its text_encoder/ (given as a folder or a file in it)."""
    candidates = []
    if path.is_dir():
        candidates.append(path / "tokenizer")
        if path.name == "text_encoder":
            candidates.append(path.parent / "tokenizer")
    elif path.parent.name == "text_encoder":
        candidates.append(path.parent.parent / "tokenizer")
    return [c for c in candidates if c.is_dir()]


def _tokenizer_for(
    text_kind: str, path: Path, tokenizer: ClipTokenizer | str | Path | None, pipeline: str
) -> ClipTokenizer:
    pad_token = PAD_TOKENS[text_kind]
    if isinstance(tokenizer, ClipTokenizer):
        if tokenizer.pad_token != pad_token:
            raise ValueError(
                f"the tokenizer pads with {tokenizer.pad_token!r}; {text_kind} text is padded with {pad_token!r} "
                f"(build it with pad_token={pad_token!r}, or pass its folder instead)"
            )
        return tokenizer
    if text_kind == CLIP_L:  # as ClipTextEncoder.load has always chosen it
        if tokenizer is not None:
            return ClipTokenizer.from_path(tokenizer, MAX_LENGTH, pipeline, pad_token)
        return ClipTokenizer.find((), MAX_LENGTH, pipeline, pad_token)
    beside = tokenizer_folders_beside(path)
    if beside:
        return ClipTokenizer.from_folder(beside[0], MAX_LENGTH, pipeline, pad_token)
    if tokenizer is not None:
        return ClipTokenizer.from_path(tokenizer, MAX_LENGTH, pipeline, pad_token)
    return ClipTokenizer.find((), MAX_LENGTH, pipeline, pad_token)


def open_text_encoder(
    text_kind: str,
    path: str | Path | None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    tokenizer: ClipTokenizer | str | Path | None = None,
    *,
    pipeline: str = TRANSFORMERS4_FTFY,
    expected_hidden_size: int | None = None,
) -> ClipTextEncoder:
    """The encoder for `text_kind` ("clip_l" or "openclip_h"; "sdxl" has none) read from `path`, on `device` in
    `dtype`: `.encode(prompts)` → [B, 77, D], `.hidden_size` (D, whatever the file has: the caller checks it against
    the module's cross_attention_dim), `.device`, `.dtype`, `.text_kind`.

    `tokenizer`: a ClipTokenizer (used as given; its padding must be the kind's), or a path (for openclip_h, used
    when no tokenizer/ folder is beside the encoder), or None (found). `pipeline`: which host tokenizer's text
    cleaning to reproduce (sing_core.text.pretokenize). `expected_hidden_size`: refuse another width; for clip_l
    None means 768, for openclip_h any width.
    """
    if text_kind == SDXL_TEXT:
        raise TextEncoderLoadError(SDXL_HAS_NO_FILE)
    if text_kind not in TEXT_KINDS:
        raise ModuleKindError(f"text kind {text_kind!r} is not one of {', '.join(TEXT_KINDS)}")
    if path is None or str(path) == "":
        raise TextEncoderLoadError(f"no text encoder was chosen. {WHERE_TO_GET[text_kind]}")
    path = Path(path)
    if text_kind == CLIP_L and expected_hidden_size is None:
        expected_hidden_size = TEXT_WIDTHS[CLIP_L]
    model = load_text_encoder(path, device, dtype, expected_hidden_size=expected_hidden_size, text_kind=text_kind)
    return ClipTextEncoder(_tokenizer_for(text_kind, path, tokenizer, pipeline), model, text_kind)
