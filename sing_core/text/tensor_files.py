"""Read named tensors from a weights file without trusting it: .safetensors lazily, pickles only as weights_only.

torch.serialization.load is called, not torch.load: the webui replaces torch.load with its own checker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class WeightsFileError(ValueError):
    """A weights file that cannot be read, or whose content is not what the caller needs."""


class TensorFile:
    """Keys, shapes, tensors and string metadata of one weights file; tensors are read only when asked for."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle: Any = None
        self._tensors: dict[str, torch.Tensor] | None = None
        self.metadata: dict[str, str] = {}
        if not self.path.is_file():
            raise WeightsFileError(f"{self.path}: no such file")
        suffix = self.path.suffix.lower()
        if suffix in SAFETENSORS_SUFFIXES:
            self._open_safetensors()
        elif suffix in PICKLE_SUFFIXES:
            self._open_pickle()
        else:
            raise WeightsFileError(
                f"{self.path}: unknown weights format {suffix!r}; use .safetensors (or a {'/'.join(PICKLE_SUFFIXES)} "
                "pickle, which is read with weights_only=True)"
            )

    def _open_safetensors(self) -> None:
        try:
            self._handle = safe_open(str(self.path), framework="pt", device="cpu")
            self.metadata = dict(self._handle.metadata() or {})
        except (SafetensorError, OSError, ValueError) as error:
            raise WeightsFileError(
                f"{self.path}: not a readable .safetensors file ({error}); it may be truncated (an interrupted "
                "download): download it again"
            ) from error

    def _open_pickle(self) -> None:
        try:
            try:
                loaded = torch.serialization.load(self.path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as error:  # files saved in the legacy (pre-zip) format cannot be memory-mapped
                if "mmap" not in str(error):
                    raise
                loaded = torch.serialization.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # the unpickler raises many types; every one means "cannot read this safely"
            # torch's message is long and suggests weights_only=False; keep its one line that names the cause.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
            cause = next((line for line in lines if line.startswith("WeightsUnpickler error:")), lines[0])
            raise WeightsFileError(
                f"{self.path}: cannot be read as plain weights (weights_only=True): {cause} Use the .safetensors "
                "version of this model, or convert the file to .safetensors."
            ) from error
        if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
            loaded = loaded["state_dict"]  # Lightning-style .ckpt
        if not isinstance(loaded, dict):
            raise WeightsFileError(f"{self.path}: holds a {type(loaded).__name__}, not a dict of tensors")
        self._tensors = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}

    def keys(self) -> list[str]:
        return list(self._handle.keys()) if self._tensors is None else list(self._tensors)

    def shape(self, key: str) -> tuple[int, ...]:
        if self._tensors is not None:
            return tuple(self._tensors[key].shape)
        return tuple(self._handle.get_slice(key).get_shape())

    def tensor(self, key: str) -> torch.Tensor:
        if self._tensors is not None:
            return self._tensors[key]
        try:
            return self._handle.get_tensor(key)
        except (SafetensorError, OSError, ValueError) as error:
            raise WeightsFileError(
                f"{self.path}: cannot read tensor {key!r} ({error}); the file may be damaged"
            ) from error

    def json_metadata(self, key: str) -> Any:
        """A metadata entry holding JSON, or None when absent."""
        if key not in self.metadata:
            return None
        try:
            return json.loads(self.metadata[key])
        except json.JSONDecodeError as error:
            raise WeightsFileError(f"{self.path}: metadata {key!r} is not valid JSON ({error})") from error
