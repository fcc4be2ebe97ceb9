"""Load SD-1.5's CLIP text encoder from the files users have: a clip_l.safetensors, a full SD-1.x checkpoint, a
diffusers/HF folder, or our module file with the encoder under "text_encoder." and its config in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sing_core.text.clip_text import ClipTextConfig, ClipTextModel
from sing_core.text.tensor_files import TensorFile, WeightsFileError

MODULE_PREFIX = "text_encoder."
MODULE_CONFIG_METADATA_KEY = "text_encoder_config"
SD1_PREFIX = "cond_stage_model.transformer."
# CLIPTextModel's own keys without the "text_model." level: old SD-1 checkpoints (A1111 renames them too) and every
# file transformers >= 5 saves (it dropped the level and adds it back only when loading).
BARE_PARTS = ("embeddings.", "encoder.", "final_layer_norm.")
BARE_MARKER = "embeddings.token_embedding.weight"
# Parts of a CLIPModel / CLIPTextModelWithProjection that the text conditioning does not use.
IGNORED_KEYS = ("text_model.embeddings.position_ids", "text_projection.weight", "text_projection.bias", "logit_scale")
CLIP_L_WIDTH = 768
WHERE_TO_GET_CLIP_L = (
    "The SingDiffusion module needs SD-1.5's text encoder (CLIP ViT-L/14, 768 wide), whatever the host model is: "
    "point to any SD-1.x checkpoint (e.g. v1-5-pruned-emaonly.safetensors), a clip_l.safetensors, or the "
    "text_encoder/ folder of stable-diffusion-v1-5."
)
REFUSED_LAYOUTS = (
    ("cond_stage_model.model.", "an SD-2.x checkpoint (OpenCLIP ViT-H text encoder, 1024 wide)"),
    ("conditioner.embedders.", "an SDXL checkpoint"),
    ("text_encoders.", "an SD3-style checkpoint"),
)


class TextEncoderLoadError(WeightsFileError):
    """The file does not hold a usable SD-1.5 CLIP text encoder."""


def _list(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def _resolve_path(path: Path) -> tuple[Path, dict | None]:
    """A file as it is; a folder → its model.safetensors (HF/diffusers layout) and the config.json beside it."""
    if not path.is_dir():
        return path, None
    for folder in (path, path / "text_encoder"):
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (folder / name).is_file():
                config_path = folder / "config.json"
                try:
                    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
                except (OSError, json.JSONDecodeError) as error:
                    raise TextEncoderLoadError(f"{config_path}: unreadable config ({error})") from error
                return folder / name, config
    raise TextEncoderLoadError(f"{path}: a folder without model.safetensors (or text_encoder/model.safetensors)")


def _text_keys(file: TensorFile) -> tuple[dict[str, str], list[str], dict | None]:
    """HF key → file key for the text tower, keys under the tower's prefix that do not belong, and a config dict."""
    keys = file.keys()
    for marker, what in REFUSED_LAYOUTS:
        if any(k.startswith(marker) for k in keys):
            raise TextEncoderLoadError(f"{file.path}: this is {what}, not SD-1.5's CLIP-L. {WHERE_TO_GET_CLIP_L}")
    config = None
    if any(k.startswith(MODULE_PREFIX) for k in keys):
        prefix = MODULE_PREFIX
        config = file.json_metadata(MODULE_CONFIG_METADATA_KEY)
    elif any(k.startswith(SD1_PREFIX) for k in keys):
        prefix = SD1_PREFIX
    elif BARE_MARKER in keys or any(k.startswith("text_model.") for k in keys):
        prefix = ""
    else:
        raise TextEncoderLoadError(
            f"{file.path}: no CLIP text encoder in it (no key starts with '{SD1_PREFIX}', 'text_model.' or "
            f"'{MODULE_PREFIX}'; first keys: {_list(sorted(keys), 4)}). {WHERE_TO_GET_CLIP_L}"
        )
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
            mapping[name] = key
        elif prefix:  # under "" the rest is other CLIPModel parts (vision_model.*, visual_projection.*)
            stray.append(key)
    return mapping, stray, config


def _all_finite(tensor: torch.Tensor) -> bool:
    # max |x| is NaN or inf exactly when some element is; it is several times faster than isfinite().all() on CPU.
    return not tensor.is_floating_point() or tensor.numel() == 0 or bool(torch.isfinite(tensor.abs().amax()))


def _check_finite(stored: dict[str, torch.Tensor], cast: dict[str, torch.Tensor], path: Path) -> None:
    bad = sorted(k for k, t in cast.items() if not _all_finite(t))
    damaged = [k for k in bad if not _all_finite(stored[k])]
    if damaged:
        raise TextEncoderLoadError(f"{path}: NaN or inf values in {_list(damaged)}; the file is damaged")
    if bad:
        dtype = cast[bad[0]].dtype
        raise TextEncoderLoadError(
            f"{path}: values in {_list(bad)} overflow {dtype}; load the text encoder in float32 or bfloat16"
        )


def _check_keys(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    stray: list[str],
    config: ClipTextConfig,
    path: Path,
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected)) + sorted(stray)
    wrong = sorted(f"{k} {found[k]} != {expected[k]}" for k in set(expected) & set(found) if found[k] != expected[k])
    problems = [
        f"{label}: {_list(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong))
        if keys
    ]
    if problems:
        raise TextEncoderLoadError(
            f"{path}: the text encoder's tensors do not fit a CLIP text model of this config ({config}): "
            + "; ".join(problems)
        )


def load_text_encoder(
    path: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    config: ClipTextConfig | None = None,
    expected_hidden_size: int | None = CLIP_L_WIDTH,
) -> ClipTextModel:
    """The text encoder in `path`, in eval mode without gradients, on `device` in `dtype`.

    The config comes from `config`, else the file (module metadata, or the folder's config.json), else the tensor
    shapes. `expected_hidden_size` (768 = CLIP-L) refuses other text towers; None accepts any width.
    """
    path = Path(path)
    weights_path, folder_config = _resolve_path(path)
    file = TensorFile(weights_path)
    mapping, stray, file_config = _text_keys(file)
    shapes = {name: file.shape(key) for name, key in mapping.items()}
    try:
        if config is None and (file_config or folder_config) is not None:
            config = ClipTextConfig.from_dict(file_config or folder_config)
        if config is None:
            config = ClipTextConfig.from_shapes(shapes)
    except ValueError as error:
        raise TextEncoderLoadError(f"{weights_path}: {error}") from error
    if expected_hidden_size is not None and config.hidden_size != expected_hidden_size:
        hint = " (SD-2's OpenCLIP ViT-H)" if config.hidden_size == 1024 else ""
        raise TextEncoderLoadError(
            f"{weights_path}: the text encoder is {config.hidden_size} wide{hint}, expected {expected_hidden_size}. "
            f"{WHERE_TO_GET_CLIP_L}"
        )
    with torch.device("meta"):  # no random init of weights that are replaced right away
        model = ClipTextModel(config)
    _check_keys({k: tuple(v.shape) for k, v in model.state_dict().items()}, shapes, stray, config, weights_path)
    stored = {name: file.tensor(key) for name, key in mapping.items()}
    state = {name: t.to(device=device, dtype=dtype) for name, t in stored.items()}
    _check_finite(stored, state, weights_path)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)
