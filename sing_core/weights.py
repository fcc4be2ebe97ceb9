"""Reading SingDiffusion module files safely: where the config and weights are, tensors, shapes, hashes.

Three layouts are accepted:
  (a) SingDiffusion's release folder: config.json + diffusion_pytorch_model.bin (a pickled state dict, read with
      torch's weights_only unpickler, never a full unpickle) or + diffusion_pytorch_model.safetensors;
  (b) One More Step's release folder as downloaded from Hugging Face, or its oms_module/ subfolder
      (sing_core.oms_folder);
  (c) one .safetensors file carrying the config and the module's kind in its metadata (checkpoint.save_module).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from sing_core import oms_folder
from sing_core.config import ConfigError, UNetConfig
from sing_core.kinds import ModuleKind, ModuleKindError
from sing_core.pickle_header import HeaderError, TensorHeader, read_state_dict_header

CONFIG_NAME = "config.json"
WEIGHTS_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")

# Metadata of our single-file format. "format": "pt" is the safetensors convention other tools check.
FORMAT_KEY, FORMAT_VERSION = "singdiffusion_format", "1"
CONFIG_KEY = "singdiffusion_config"
TEXT_ENCODER_CONFIG_KEY = "text_encoder_config"
TEXT_ENCODER_PREFIX = "text_encoder."

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}

RELEASE_HINT = (
    "a start module is SingDiffusion's folder (config.json + diffusion_pytorch_model.bin), One More Step's folder as"
    " downloaded (model_index.json + oms_module/ + ...), or a module .safetensors"
)
CONVERT_HINT = "python -m sing_core convert RELEASE_FOLDER OUT.safetensors"


class CheckpointError(ValueError):
    """A module file that cannot be used; the message names the file, the cause and the fix."""


def is_ignored_key(key: str) -> bool:
    """Keys the time-free UNet does not have: the time embedding, the resnets' time projections, a text encoder."""
    return key.startswith(("time_embedding.", TEXT_ENCODER_PREFIX)) or ".time_emb_proj." in key


@dataclass(frozen=True)
class Source:
    """Where a module's config and weights live, and what the module is. config_path is None for our single file
    (config and kind in its metadata); module_kind is None there until read_kind reads the metadata."""

    path: Path
    weights: Path
    config_path: Path | None
    module_kind: ModuleKind | None = None

    @property
    def kind(self) -> str:
        """The layout, for people: which of the three forms the module came in."""
        if self.config_path is None:
            return "singdiffusion .safetensors"
        if self.config_path.parent.name == oms_folder.MODULE_FOLDER:
            return f"One More Step release folder ({self.weights.name})"
        return f"release folder ({self.weights.suffix})"

    @property
    def name(self) -> str:
        """The module's name: the file's stem, or the release folder's name."""
        return self.path.stem if self.config_path is None else self.path.name


def resolve(path: str | os.PathLike, kind: ModuleKind | None = None) -> Source:
    """Find the config, the weights and (for folders) the kind of a release folder, a release weights file, an OMS
    folder or its oms_module/, or one of our .safetensors files. `kind` states the module's kind where the files
    cannot (convert --method/--family/--text); it takes the place of what they say."""
    source = _resolve(Path(path), read_oms_kind=kind is None)
    return source if kind is None else dataclasses.replace(source, module_kind=kind)


def _resolve(path: Path, read_oms_kind: bool = True) -> Source:
    try:
        root = oms_folder.oms_root(path if path.is_dir() else path.parent)
        if root is not None:
            config_path, weights = oms_folder.module_files(root)
            return Source(root, weights, config_path, oms_folder.module_kind(root) if read_oms_kind else None)
    except oms_folder.OmsFolderError as error:
        raise CheckpointError(str(error)) from error
    if path.is_dir():
        config_path = path / CONFIG_NAME
        found = [path / name for name in WEIGHTS_NAMES if (path / name).is_file()]
        if not found:
            raise CheckpointError(
                f"{path}: no {' or '.join(WEIGHTS_NAMES)} in this folder; {RELEASE_HINT} (the module's Google Drive"
                " folder, linked from the SingDiffusion README)"
            )
        if not config_path.is_file():
            raise CheckpointError(f"{path}: missing {CONFIG_NAME} beside {found[0].name}; download it with the weights")
        return Source(path, found[0], config_path, ModuleKind())  # the SingDiffusion release's own layout
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file or folder; {RELEASE_HINT}")
    if path.name in WEIGHTS_NAMES:
        return _resolve(path.parent)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: not a module file ({path.suffix or 'no suffix'}); {RELEASE_HINT}")
    return Source(path, path, None)


def _safe_open(path: Path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as error:  # safetensors raises its own SafetensorError or OSError
        raise CheckpointError(
            f"{path}: truncated or corrupt safetensors file ({error}); download or convert it again"
        ) from error


def read_config(source: Source) -> UNetConfig:
    if source.config_path is not None:
        try:
            text = source.config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{source.config_path}: cannot read the config ({error})") from error
        return _parse_config(text, str(source.config_path))
    with _safe_open(source.weights) as f:
        metadata = f.metadata() or {}
    if CONFIG_KEY not in metadata:
        raise CheckpointError(
            f"{source.weights}: no {CONFIG_KEY!r} in the safetensors metadata, so this is not a SingDiffusion module"
            f" file (a checkpoint or LoRA?); make one from the release folder with `{CONVERT_HINT}`"
        )
    return _parse_config(metadata[CONFIG_KEY], f"{source.weights} (metadata {CONFIG_KEY!r})")


def read_kind(source: Source) -> ModuleKind:
    """The module's method, latent family and text kind: from the folder's layout, or our file's metadata."""
    if source.module_kind is not None:
        return source.module_kind
    with _safe_open(source.weights) as f:
        metadata = f.metadata() or {}
    try:
        return ModuleKind.from_metadata(metadata)
    except ModuleKindError as error:
        raise CheckpointError(f"{source.weights}: {error}; convert the module again") from error


def _parse_config(text: str, where: str) -> UNetConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{where}: the config is not valid JSON ({error}); download the module again") from error
    try:
        return UNetConfig.from_dict(data, source=where)
    except ConfigError as error:
        raise CheckpointError(str(error)) from error


def read_unet_tensors(source: Source) -> dict[str, torch.Tensor]:
    """The UNet's tensors on the CPU as stored, without the ignored keys (the caller validates and casts).

    From a .safetensors only those keys are read, so a text encoder riding along costs no memory here.
    """
    if source.weights.suffix == ".bin":
        state = _read_pickled_state_dict(source.weights)
        return {key: value for key, value in state.items() if not is_ignored_key(key)}
    with _safe_open(source.weights) as f:
        try:
            return {key: f.get_tensor(key) for key in f.keys() if not is_ignored_key(key)}  # noqa: SIM118
        except Exception as error:
            raise CheckpointError(
                f"{source.weights}: cannot read a tensor ({error}); download or convert it again"
            ) from error


def _read_pickled_state_dict(path: Path) -> dict[str, torch.Tensor]:
    # torch.serialization.load, not torch.load: inside the webui torch.load is the webui's own restricted unpickler,
    # which refuses current .bin files. weights_only admits tensors and plain containers, never code.
    try:
        state = torch.serialization.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused to unpickle: the file holds objects other than tensors, which could run code when"
            f" loaded ({_unpickler_reason(error)}); use a copy from the official release folder"
        ) from error
    except Exception as error:
        raise CheckpointError(f"{path}: truncated or corrupt .bin ({error}); download it again") from error
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path}: not a state dict (a mapping of names to tensors); {RELEASE_HINT}")
    return state


def _unpickler_reason(error: Exception) -> str:
    # torch's message is a page of advice; the line naming the refused global is the cause.
    for line in str(error).splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip().split(". ")[0]
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _read_bin_header(path: Path) -> dict[str, TensorHeader]:
    try:
        return read_state_dict_header(path)
    except HeaderError as error:
        if error.kind == "refused":
            raise CheckpointError(
                f"{path}: refused to unpickle: the file holds objects other than tensors, which could run code when"
                f" loaded ({error.detail}); use a copy from the official release folder"
            ) from error
        if error.kind == "not a state dict":
            message = f"{path}: not a state dict (a mapping of names to tensors); {RELEASE_HINT}"
            raise CheckpointError(message) from error
        raise CheckpointError(f"{path}: truncated or corrupt .bin ({error.detail}); download it again") from error


def read_shapes(source: Source) -> tuple[dict[str, tuple[int, ...]], dict[str, torch.dtype], bool]:
    """Shapes and dtypes of the UNet's tensors, and whether a text encoder is inside, from the file's header only.

    A .safetensors: its JSON header (names, dtypes, shapes, offsets); no tensor is read. A .bin (torch.save, zip or
    legacy): the pickle of its structure, by a restricted unpickler that runs no code (sing_core.pickle_header);
    the storages, which hold all the tensor data, are never read.
    """
    if source.weights.suffix == ".bin":
        state = _read_bin_header(source.weights)
        shapes = {k: v.shape for k, v in state.items()}
        dtypes = {k: v.dtype for k, v in state.items()}
    else:
        with _safe_open(source.weights) as f:
            slices = {key: f.get_slice(key) for key in f.keys()}  # noqa: SIM118
            shapes = {k: tuple(s.get_shape()) for k, s in slices.items()}
            dtypes = {k: SAFETENSORS_DTYPES.get(s.get_dtype(), s.get_dtype()) for k, s in slices.items()}
    has_text_encoder = any(k.startswith(TEXT_ENCODER_PREFIX) for k in shapes)
    keep = [k for k in shapes if not is_ignored_key(k)]
    return {k: shapes[k] for k in keep}, {k: dtypes[k] for k in keep}, has_text_encoder


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def short_hash(path: str | os.PathLike) -> str:
    """First 10 hex digits of the weights file's sha256, as the webui prints model hashes; cached per file version."""
    weights = _resolve(Path(path), read_oms_kind=False).weights  # the bytes only: the kind is not needed
    stat = weights.stat()
    key = (str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    digest = hashlib.sha256()
    with weights.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    with _hash_lock:
        _hash_cache[key] = digest.hexdigest()[:10]
    return _hash_cache[key]


def write_safetensors_atomically(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> Path:
    """A temp file in the same folder, fsync, then a rename: readers see the old file or the new one."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.chmod(path.stat().st_mode & 0o777 if path.exists() else 0o644)  # mkstemp made it private (0600)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        tmp.replace(path)  # atomic: readers see the old file or the new one, never a partial write
        return path
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
