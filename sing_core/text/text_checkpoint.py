"""Load a CLIP text tower from the files users have, for a text kind (sing_core.text.text_layouts says which
layouts each kind takes): SD-1.5's CLIP-L from a clip_l.safetensors, an SD-1.x checkpoint, a diffusers/HF folder or
our module file; SD-2's OpenCLIP ViT-H from an SD-2.x checkpoint, an open_clip file or a diffusers SD-2 folder.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from sing_core.kinds import CLIP_L
from sing_core.text.clip_text import ClipTextConfig, ClipTextModel
from sing_core.text.tensor_files import TensorFile
from sing_core.text.text_layouts import (
    WHERE_TO_GET,
    TextEncoderLoadError,
    list_keys,
    text_tower,
)

CLIP_L_WIDTH = 768
# The weights file names of a Hugging Face text_encoder/ folder, in the order they are preferred (fp16 variants are
# what `variant="fp16"` downloads leave).
FOLDER_WEIGHTS = ("model.safetensors", "model.fp16.safetensors", "pytorch_model.bin", "pytorch_model.fp16.bin")


def resolve_weights_path(path: Path, text_kind: str) -> tuple[Path, dict | None]:
    """A file as it is; a folder → its weights (HF/diffusers layout: the folder or its text_encoder/) and the
    config.json beside them."""
    if not path.exists():
        raise TextEncoderLoadError(f"{path}: no such file or folder. {WHERE_TO_GET[text_kind]}")
    if not path.is_dir():
        return path, None
    for folder in (path, path / "text_encoder"):
        for name in FOLDER_WEIGHTS:
            if (folder / name).is_file():
                config_path = folder / "config.json"
                try:
                    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
                except (OSError, json.JSONDecodeError) as error:
                    raise TextEncoderLoadError(f"{config_path}: unreadable config ({error})") from error
                return folder / name, config
    raise TextEncoderLoadError(
        f"{path}: a folder without {' or '.join(FOLDER_WEIGHTS)} (in it or in its text_encoder/). "
        f"{WHERE_TO_GET[text_kind]}"
    )


def _all_finite(tensor: torch.Tensor) -> bool:
    # max |x| is NaN or inf exactly when some element is; it is several times faster than isfinite().all() on CPU.
    return not tensor.is_floating_point() or tensor.numel() == 0 or bool(torch.isfinite(tensor.abs().amax()))


def _check_finite(stored: dict[str, torch.Tensor], cast: dict[str, torch.Tensor], path: Path) -> None:
    bad = sorted(k for k, t in cast.items() if not _all_finite(t))
    damaged = [k for k in bad if not _all_finite(stored[k])]
    if damaged:
        raise TextEncoderLoadError(f"{path}: NaN or inf values in {list_keys(damaged)}; the file is damaged")
    if bad:
        dtype = cast[bad[0]].dtype
        raise TextEncoderLoadError(
            f"{path}: values in {list_keys(bad)} overflow {dtype}; load the text encoder in float32 or bfloat16"
        )


def _check_keys(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    stray: list[str],
    config: ClipTextConfig,
    path: Path | str,
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected)) + sorted(stray)
    wrong = sorted(f"{k} {found[k]} != {expected[k]}" for k in set(expected) & set(found) if found[k] != expected[k])
    problems = [
        f"{label}: {list_keys(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong))
        if keys
    ]
    if problems:
        raise TextEncoderLoadError(
            f"{path}: the text encoder's tensors do not fit a CLIP text model of this config ({config}): "
            + "; ".join(problems)
        )


WIDTH_NAMES = {768: "SD-1.5's CLIP-L", 1024: "SD-2's OpenCLIP ViT-H"}


def load_text_encoder(
    path: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    config: ClipTextConfig | None = None,
    expected_hidden_size: int | None = CLIP_L_WIDTH,
    text_kind: str = CLIP_L,
) -> ClipTextModel:
    """The `text_kind` text encoder in `path` ("clip_l" or "openclip_h"), in eval mode without gradients, on
    `device` in `dtype`; its output is the conditioning that kind stands for (for openclip_h, SD-2's: an open_clip
    file's last block is left out).

    The config comes from `config`, else the file (module metadata, or the folder's config.json), else the tensor
    shapes. `expected_hidden_size` (768 = CLIP-L) refuses other widths; None accepts any width.
    """
    path = Path(path)
    weights_path, folder_config = resolve_weights_path(path, text_kind)
    file = TensorFile(weights_path)
    tower = text_tower(file, text_kind)
    shapes = {name: source.shape(file.shape(source.key)) for name, source in tower.mapping.items()}
    try:
        if config is None and (tower.config or folder_config) is not None:
            config = ClipTextConfig.from_dict(tower.config or folder_config)
            layers = config.num_hidden_layers - tower.layers_dropped
            config = dataclasses.replace(config, num_hidden_layers=layers)
        if config is None:
            config = ClipTextConfig.from_shapes(shapes, tower.hidden_act)
    except ValueError as error:
        raise TextEncoderLoadError(f"{weights_path}: {error}") from error
    if expected_hidden_size is not None and config.hidden_size != expected_hidden_size:
        name = WIDTH_NAMES.get(config.hidden_size)
        hint = f" ({name})" if name else ""
        raise TextEncoderLoadError(
            f"{weights_path}: the text encoder is {config.hidden_size} wide{hint}, expected {expected_hidden_size}. "
            f"{WHERE_TO_GET[text_kind]}"
        )
    with torch.device("meta"):  # no random init of weights that are replaced right away
        model = ClipTextModel(config)
    where = f"{weights_path} ({tower.note})" if tower.note else weights_path
    _check_keys({k: tuple(v.shape) for k, v in model.state_dict().items()}, shapes, tower.stray, config, where)
    read: dict[str, torch.Tensor] = {}  # an open_clip in_proj serves q, k and v: read it once
    stored = {}
    for name, source in tower.mapping.items():
        if source.key not in read:
            read[source.key] = file.tensor(source.key)
        stored[name] = source.take(read[source.key])
    state = {name: t.to(device=device, dtype=dtype) for name, t in stored.items()}
    _check_finite(stored, state, weights_path)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)
