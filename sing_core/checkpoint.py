"""Load, save and describe SingDiffusion modules (file reading lives in sing_core.weights).

Our single-file format is a .safetensors whose keys are diffusers' UNet2DConditionModel keys without the time
embedding, whose metadata holds "singdiffusion_format" = "1", "singdiffusion_config" = the diffusers-style config as
JSON, "format" = "pt" and the module's kind (sing_core.kinds: "singdiffusion_method", "singdiffusion_family",
"singdiffusion_text"; a file without them is a SingDiffusion SD-1.x/2.x module reading CLIP-L); it may also carry a
CLIPTextModel under "text_encoder." with its config in "text_encoder_config" (read by the text encoder's own loader;
ignored here).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sing_core.config import ConfigError, UNetConfig
from sing_core.kinds import ModuleKind
from sing_core.module import SingModule
from sing_core.unet import SingUNet
from sing_core.weights import (
    CONFIG_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    SUPPORTED_DTYPES,
    TEXT_ENCODER_CONFIG_KEY,
    TEXT_ENCODER_PREFIX,
    CheckpointError,
    is_ignored_key,
    read_config,
    read_kind,
    read_shapes,
    read_unet_tensors,
    resolve,
    short_hash,
    write_safetensors_atomically,
)

LOAD_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=8)
def expected_shapes(config: UNetConfig) -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes SingUNet has for this config (built on the meta device: no memory)."""
    with torch.device("meta"):
        unet = SingUNet(config)
    return {key: tuple(t.shape) for key, t in unet.state_dict().items()}


def _listing(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', …' if len(keys) > limit else ''})"


def check_state(
    shapes: dict[str, tuple[int, ...]], dtypes: dict[str, torch.dtype], config: UNetConfig, where: str
) -> None:
    """Every key of the time-free UNet present with its shape and a float dtype, and nothing else."""
    expected = expected_shapes(config)
    missing = sorted(k for k in expected if k not in shapes)
    unexpected = sorted(k for k in shapes if k not in expected)
    wrong = sorted(k for k in expected if k in shapes and shapes[k] != expected[k])
    problems = []
    if missing:
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listing(unexpected)}")
    if wrong:
        detail = [f"{k} {list(shapes[k])} vs {list(expected[k])}" for k in wrong]
        problems.append(f"wrong shapes (file vs config) {_listing(detail, 3)}")
    if problems:
        raise CheckpointError(
            f"{where}: the weights do not fit the config: {'; '.join(problems)}; config and weights must come from"
            " the same release"
        )
    for key, dtype in dtypes.items():
        if dtype not in SUPPORTED_DTYPES:
            raise CheckpointError(
                f"{where}: tensor {key} has dtype {dtype}; module weights must be float32, float16 or bfloat16"
            )


def _check_finite(state: dict[str, torch.Tensor], where: str, fix: str) -> None:
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{where}: tensor {key} contains NaN or inf; {fix}")


def load_module(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    kind: ModuleKind | None = None,
) -> SingModule:
    """A SingModule from a release folder (SingDiffusion's or One More Step's) or one of our .safetensors files, in
    eval mode on `device` in `dtype`. `kind` overrides what the files say (for folders that cannot say it)."""
    if dtype not in LOAD_DTYPES:
        raise CheckpointError(f"load_module(dtype={dtype}): supported dtypes are float32, float16 and bfloat16")
    source = resolve(path, kind)
    config = read_config(source)
    kind = read_kind(source)
    state = read_unet_tensors(source)
    where = str(source.weights)
    check_state({k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()}, config, where)
    _check_finite(state, where, "the file is damaged, download it again")
    with torch.device("meta"):
        unet = SingUNet(config)
    unet.load_state_dict(state, strict=True, assign=True)  # the loaded tensors become the parameters: no copy
    del state
    module = SingModule(config, unet, kind).to(device=device, dtype=dtype).eval().requires_grad_(False)
    module.path = str(source.path)
    module.name = source.name
    module.short_hash = short_hash(source.path)
    return module


def _state_of(module_or_state: Any) -> dict[str, torch.Tensor]:
    if isinstance(module_or_state, SingModule):
        return module_or_state.unet.state_dict()
    if isinstance(module_or_state, torch.nn.Module):
        return module_or_state.state_dict()
    if isinstance(module_or_state, dict):
        return dict(module_or_state)
    raise TypeError(f"save_module: expected a SingModule, a SingUNet or a state dict, got {type(module_or_state)}")


def save_module(
    module_or_state: Any,
    config: UNetConfig | dict | None,
    path: str | os.PathLike,
    *,
    half: bool = False,
    text_encoder_state: dict[str, torch.Tensor] | None = None,
    text_encoder_config: dict | None = None,
    kind: ModuleKind | None = None,
) -> Path:
    """Write our single .safetensors atomically (a temp file in the same folder, then os.replace). Returns the path.

    config may be None when module_or_state is a SingModule (its own config is used); kind likewise (its own kind;
    for a bare state dict the default, a SingDiffusion SD-1.x/2.x module reading CLIP-L).

    The time embedding and time projections of a diffusers state dict are dropped; everything else must match the
    config exactly. half=True stores float16 (and refuses weights that overflow it).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: the module file must end in .safetensors")
    if config is None:
        if not isinstance(module_or_state, SingModule):
            raise TypeError("save_module: pass the config when saving a bare state dict or SingUNet")
        config = module_or_state.config
    elif isinstance(config, dict):
        try:
            config = UNetConfig.from_dict(config, source=f"the config given to save_module for {path}")
        except ConfigError as error:
            raise CheckpointError(str(error)) from error
    state = {k: v.detach() for k, v in _state_of(module_or_state).items() if not is_ignored_key(k)}
    check_state(
        {k: tuple(v.shape) for k, v in state.items()},
        {k: v.dtype for k, v in state.items()},
        config,
        f"save_module({path})",
    )
    tensors = dict(state)
    if kind is None:
        kind = module_or_state.kind if isinstance(module_or_state, SingModule) else ModuleKind()
    metadata = {"format": "pt", FORMAT_KEY: FORMAT_VERSION, CONFIG_KEY: json.dumps(config.to_dict())}
    metadata |= kind.to_metadata()
    if text_encoder_state is not None:
        tensors |= {TEXT_ENCODER_PREFIX + k: v.detach() for k, v in text_encoder_state.items()}
        if text_encoder_config is None:
            raise TypeError("save_module: text_encoder_state needs text_encoder_config")
        metadata[TEXT_ENCODER_CONFIG_KEY] = json.dumps(text_encoder_config)
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    if half:
        _check_finite(tensors, f"save_module({path}, half=True)", "it overflows float16; save in the original dtype")
    else:
        _check_finite(tensors, f"save_module({path})", "the weights are broken; nothing was written")
    write_safetensors_atomically(_unshared(tensors), metadata, path)
    return path


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage (tied weights); such views are written as copies.
    seen, out = set(), {}
    for key, value in tensors.items():
        tensor = value.to("cpu").contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out


@dataclass(frozen=True)
class ModuleInfo:
    """What a module file is, read from its header and config only (no tensor data)."""

    name: str
    path: str
    kind: str  # the layout: our file, SingDiffusion's or One More Step's release folder
    module_kind: ModuleKind
    config: UNetConfig
    parameter_count: int
    dtype: str
    latent_channels: int
    cross_attention_dim: int
    short_hash: str
    size_bytes: int
    has_text_encoder: bool


def describe(path: str | os.PathLike) -> ModuleInfo:
    """Config, parameter count, dtype, widths, short hash and size of a module, checked against its config.

    What is read: the config (config.json or the safetensors metadata) and the weights file's header only
    (weights.read_shapes: the safetensors JSON header; the .bin's structure pickle, without its storages and
    without running code), never a tensor. The short hash is the sha256 of the weights file's bytes, so those
    bytes are read once (and cached per file version), but not decoded.
    """
    source = resolve(path)
    config = read_config(source)
    module_kind = read_kind(source)
    shapes, dtypes, has_text_encoder = read_shapes(source)
    check_state(shapes, dtypes, config, str(source.weights))
    names = sorted({str(d).removeprefix("torch.") for d in dtypes.values()})
    size = source.weights.stat().st_size + (source.config_path.stat().st_size if source.config_path else 0)
    return ModuleInfo(
        name=source.name,
        path=str(source.path),
        kind=source.kind,
        module_kind=module_kind,
        config=config,
        parameter_count=sum(int(torch.Size(s).numel()) for s in shapes.values()),
        dtype=names[0] if len(names) == 1 else f"mixed ({', '.join(names)})",
        latent_channels=config.in_channels,
        cross_attention_dim=config.cross_attention_dim,
        short_hash=short_hash(source.path),
        size_bytes=size,
        has_text_encoder=has_text_encoder,
    )
