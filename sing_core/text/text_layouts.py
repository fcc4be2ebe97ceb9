"""Which tensors of a weights file are the text tower a text kind needs, in Hugging Face CLIPTextModel names.

clip_l (SD-1.5's CLIP ViT-L/14): a clip_l.safetensors, an SD-1.x checkpoint ("cond_stage_model.transformer."), an
HF/diffusers text_encoder, or our module file ("text_encoder." + config metadata). SD-2, SDXL and SD3 layouts are
refused with the file to choose instead.

openclip_h (SD-2's OpenCLIP ViT-H/14): an SD-2.x checkpoint ("cond_stage_model.model.", open_clip keys), a standalone
open_clip file (the same keys bare), or an HF/diffusers text_encoder (the SD-2 text_encoder/ folder). SD-1.x, SDXL
and SD3 layouts are refused likewise.
"""

from __future__ import annotations

from dataclasses import dataclass

from sing_core.kinds import CLIP_L, OPENCLIP_H
from sing_core.text.open_clip_keys import (
    OPEN_CLIP_SD2_PREFIX,
    TensorSource,
    is_open_clip_layout,
    open_clip_text_mapping,
)
from sing_core.text.tensor_files import TensorFile, WeightsFileError

MODULE_PREFIX = "text_encoder."
MODULE_CONFIG_METADATA_KEY = "text_encoder_config"
SD1_PREFIX = "cond_stage_model.transformer."
# CLIPTextModel's own keys without the "text_model." level: old SD-1 checkpoints (A1111 renames them too) and every
# file transformers >= 5 saves (it dropped the level and adds it back only when loading).
BARE_PARTS = ("embeddings.", "encoder.", "final_layer_norm.")
BARE_MARKER = "embeddings.token_embedding.weight"
# Parts of a CLIPModel / CLIPTextModelWithProjection that the text conditioning does not use.
# A text tower saved with them is a whole CLIP model (CLIPModel, CLIPTextModelWithProjection), whose last layer
# feeds the projection; SD-2's diffusers text_encoder/ is a CLIPTextModel already cut to the penultimate layer.
FULL_CLIP_PARTS = ("vision_model.", "text_projection.")
HF_LAYERS = "text_model.encoder.layers."
IGNORED_KEYS = ("text_model.embeddings.position_ids", "text_projection.weight", "text_projection.bias", "logit_scale")

WHERE_TO_GET = {
    CLIP_L: (
        "The SingDiffusion module needs SD-1.5's text encoder (CLIP ViT-L/14, 768 wide), whatever the host model is: "
        "point to any SD-1.x checkpoint (e.g. v1-5-pruned-emaonly.safetensors), a clip_l.safetensors, or the "
        "text_encoder/ folder of stable-diffusion-v1-5."
    ),
    OPENCLIP_H: (
        "This module reads SD-2's text encoder (OpenCLIP ViT-H/14), whatever the host model is: point to any SD-2.x "
        "checkpoint such as v2-1_768-ema-pruned.safetensors, or the text_encoder/ folder of stable-diffusion-2-1 "
        "(with its tokenizer/ beside it)."
    ),
}
# (key prefix, what a file with it is, the text kinds it can serve)
LAYOUTS_OF_OTHER_MODELS = (
    (SD1_PREFIX, "an SD-1.x checkpoint (CLIP ViT-L/14 text encoder, 768 wide)", (CLIP_L,)),
    (OPEN_CLIP_SD2_PREFIX, "an SD-2.x checkpoint (OpenCLIP ViT-H text encoder, 1024 wide)", (OPENCLIP_H,)),
    ("conditioner.embedders.", "an SDXL checkpoint", ()),
    ("text_encoders.", "an SD3-style checkpoint", ()),
)
TEXT_KIND_NAMES = {CLIP_L: "SD-1.5's CLIP-L", OPENCLIP_H: "SD-2's OpenCLIP ViT-H"}
DEFAULT_ACTIVATIONS = {CLIP_L: "quick_gelu", OPENCLIP_H: "gelu"}  # OpenAI's CLIP-L; OpenCLIP ViT-H (LAION)


class TextEncoderLoadError(WeightsFileError):
    """The file does not hold a usable text encoder of the kind asked for."""


@dataclass
class TextTower:
    """The text tower found in a file: HF name → source, keys under its prefix that fit nowhere, the config the
    file carries (or None) and the activation to assume when the config comes from the shapes; `note` says what was
    left out of the file's tower."""

    mapping: dict[str, TensorSource]
    stray: list[str]
    config: dict | None
    hidden_act: str
    note: str = ""
    layers_dropped: int = 0  # final layers of the file left out (config.json counts them, the mapping does not)


def list_keys(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def _hf_mapping(keys: list[str], prefix: str) -> tuple[dict[str, TensorSource], list[str]]:
    mapping, stray = {}, []
    for key in keys:
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name.startswith(BARE_PARTS):
            name = "text_model." + name
        if name in IGNORED_KEYS:
            continue
        if name.startswith("text_model."):
            mapping[name] = TensorSource(key)
        elif prefix:  # under "" the rest is other CLIPModel parts (vision_model.*, visual_projection.*)
            stray.append(key)
    return mapping, stray


def _penultimate(mapping: dict[str, TensorSource], stray: list[str], hidden_act: str) -> TextTower:
    """A whole CLIP model in HF layout (laion/CLIP-ViT-H-14's model.safetensors): SD-2 reads the output of its
    penultimate layer, so the last one is left out, as of an open_clip file."""
    layers = {int(name.split(".")[3]) for name in mapping if name.startswith(HF_LAYERS)}
    last = f"{HF_LAYERS}{max(layers, default=0)}."
    kept = {name: source for name, source in mapping.items() if not name.startswith(last)}
    note = f"a whole CLIP model, {len(layers)} text layers: the first {len(layers) - 1} are used (SD-2's penultimate)"
    return TextTower(kept, stray, None, hidden_act, note, layers_dropped=1)


def _refuse_other_models(file: TensorFile, keys: list[str], text_kind: str) -> None:
    for prefix, what, serves in LAYOUTS_OF_OTHER_MODELS:
        if text_kind not in serves and any(k.startswith(prefix) for k in keys):
            raise TextEncoderLoadError(
                f"{file.path}: this is {what}, not {TEXT_KIND_NAMES[text_kind]}. {WHERE_TO_GET[text_kind]}"
            )
    if text_kind == CLIP_L and is_open_clip_layout(keys, ""):
        raise TextEncoderLoadError(
            f"{file.path}: this is an open_clip text tower (SD-2's OpenCLIP ViT-H layout), not SD-1.5's CLIP-L. "
            f"{WHERE_TO_GET[CLIP_L]}"
        )


def text_tower(file: TensorFile, text_kind: str = CLIP_L) -> TextTower:
    """The text tower of `text_kind` in `file`, or TextEncoderLoadError naming what the file is and what to choose."""
    if text_kind not in WHERE_TO_GET:
        raise TextEncoderLoadError(f"text kind {text_kind!r} has no text encoder file; one of {sorted(WHERE_TO_GET)}")
    keys = file.keys()
    _refuse_other_models(file, keys, text_kind)
    hidden_act = DEFAULT_ACTIVATIONS[text_kind]
    if any(k.startswith(MODULE_PREFIX) for k in keys):
        mapping, stray = _hf_mapping(keys, MODULE_PREFIX)
        return TextTower(mapping, stray, file.json_metadata(MODULE_CONFIG_METADATA_KEY), hidden_act)
    if text_kind == CLIP_L and any(k.startswith(SD1_PREFIX) for k in keys):
        return TextTower(*_hf_mapping(keys, SD1_PREFIX), None, hidden_act)
    if text_kind == OPENCLIP_H:
        for prefix in (OPEN_CLIP_SD2_PREFIX, ""):
            if is_open_clip_layout(keys, prefix):
                mapping, stray, blocks = open_clip_text_mapping(keys, prefix)
                if blocks < 2:
                    raise TextEncoderLoadError(
                        f"{file.path}: an open_clip text tower of {blocks} block: SD-2 reads the output of the "
                        f"penultimate block, so there must be at least 2. {WHERE_TO_GET[text_kind]}"
                    )
                note = f"open_clip layout with {blocks} blocks: the first {blocks - 1} are used (SD-2's penultimate)"
                return TextTower(mapping, stray, None, hidden_act, note)
    if BARE_MARKER in keys or any(k.startswith("text_model.") for k in keys):
        mapping, stray = _hf_mapping(keys, "")
        if text_kind == OPENCLIP_H and any(k.startswith(FULL_CLIP_PARTS) for k in keys):
            return _penultimate(mapping, stray, hidden_act)
        return TextTower(mapping, stray, None, hidden_act)
    looked_for = (
        f"'{SD1_PREFIX}', 'text_model.'"
        if text_kind == CLIP_L
        else f"'{OPEN_CLIP_SD2_PREFIX}', 'token_embedding.weight', 'text_model.'"
    )
    raise TextEncoderLoadError(
        f"{file.path}: no CLIP text encoder in it (no key starts with {looked_for} or "
        f"'{MODULE_PREFIX}'; first keys: {list_keys(sorted(keys), 4)}). {WHERE_TO_GET[text_kind]}"
    )
