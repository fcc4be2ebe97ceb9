"""open_clip's text tower keys (what SD-2.x checkpoints hold under "cond_stage_model.model.") → Hugging Face
CLIPTextModel names, as SD-2 conditions on them.

SD-2 reads the penultimate block's output, then ln_final (ldm's FrozenOpenCLIPEmbedder, layer="penultimate"): the
checkpoint keeps all 24 resblocks of ViT-H/14, diffusers' SD-2 text_encoder/ the first 23. The last block is dropped
here as diffusers' convert_open_clip_checkpoint does, so both give the same last_hidden_state. Each block's
attn.in_proj (q, k and v stacked along dim 0) is split into q_proj, k_proj and v_proj.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_CLIP_SD2_PREFIX = "cond_stage_model.model."
OPEN_CLIP_MARKER = "token_embedding.weight"
RESBLOCKS = "transformer.resblocks."
# open_clip parts the text conditioning does not use: the image tower of a full CLIP file, the projection to the
# joint space, and buffers some exports keep.
IGNORED_PREFIXES = ("visual.", "text_projection", "logit_scale", "attn_mask")
BLOCK_RENAMES = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
IN_PROJ = "attn.in_proj_"
TOP_LEVEL = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
}
QKV = ("q_proj", "k_proj", "v_proj")


@dataclass(frozen=True)
class TensorSource:
    """Where one model tensor comes from: a file key, or the `part`-th of `parts` equal slices along its dim 0."""

    key: str
    part: int = 0
    parts: int = 1

    def shape(self, stored_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.parts == 1:
            return stored_shape
        if not stored_shape or stored_shape[0] % self.parts:
            return (-1, *stored_shape[1:])  # cannot be split evenly: reported as a wrong shape
        return (stored_shape[0] // self.parts, *stored_shape[1:])

    def take(self, tensor):
        if self.parts == 1:
            return tensor
        size = tensor.shape[0] // self.parts
        return tensor[self.part * size : (self.part + 1) * size].contiguous()


def is_open_clip_layout(keys: list[str], prefix: str) -> bool:
    return prefix + OPEN_CLIP_MARKER in keys and any(k.startswith(prefix + RESBLOCKS) for k in keys)


def block_count(keys: list[str], prefix: str) -> int:
    start = prefix + RESBLOCKS
    numbers = {k[len(start) :].split(".")[0] for k in keys if k.startswith(start)}
    return max((int(n) + 1 for n in numbers if n.isdigit()), default=0)


def _block_sources(key: str, number: str, rest: str) -> dict[str, TensorSource] | None:
    """The HF tensors one key of resblock `number` feeds (`rest`: its name inside the block); None if none."""
    layer = f"text_model.encoder.layers.{number}"
    if rest.startswith(IN_PROJ):  # attn.in_proj_weight / attn.in_proj_bias: q, k and v stacked
        suffix = rest[len(IN_PROJ) :]
        return {
            f"{layer}.self_attn.{projection}.{suffix}": TensorSource(key, part, len(QKV))
            for part, projection in enumerate(QKV)
        }
    module, _, leaf = rest.rpartition(".")
    if module in BLOCK_RENAMES:
        return {f"{layer}.{BLOCK_RENAMES[module]}.{leaf}": TensorSource(key)}
    return None


def _sources(key: str, name: str, kept: int) -> dict[str, TensorSource] | None:
    """The HF tensors `key` (`name` without the prefix) feeds; {} for a dropped block, None if it fits nowhere."""
    if name in TOP_LEVEL:
        return {TOP_LEVEL[name]: TensorSource(key)}
    if name.startswith(RESBLOCKS):
        number, _, rest = name[len(RESBLOCKS) :].partition(".")
        if number.isdigit() and int(number) >= kept:
            return {}  # the last block: SD-2 reads the one before it
        if number.isdigit():
            return _block_sources(key, number, rest)
    return None


def open_clip_text_mapping(keys: list[str], prefix: str) -> tuple[dict[str, TensorSource], list[str], int]:
    """HF name → source for the text tower under `prefix`, the keys under it that fit nowhere, and how many
    resblocks the file has (the last one is left out: SD-2 conditions on the penultimate)."""
    blocks = block_count(keys, prefix)
    mapping: dict[str, TensorSource] = {}
    stray: list[str] = []
    for key in keys:
        name = key[len(prefix) :]
        if not key.startswith(prefix) or name.startswith(IGNORED_PREFIXES):
            continue
        sources = _sources(key, name, blocks - 1)
        if sources is None:
            stray.append(key)
        else:
            mapping.update(sources)
    return mapping, stray, blocks
