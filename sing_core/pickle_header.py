"""The names, shapes and dtypes of a torch.save'd state dict, read without its tensor data and without running code.

A torch.save file is a pickle of the structure plus the tensors' storages stored apart from it: in the zip format
(torch >= 1.6) the pickle is the archive's data.pkl and each storage a member data/<key>; in the legacy format three
small pickles (magic number, protocol, system info) and the structure's pickle come first, the raw storages after.
Only that pickle is read here, by an unpickler that allows the few globals a state dict uses (OrderedDict, the
tensor rebuild function and the typed-storage classes) and refuses every other one, so nothing in the file runs.
A storage is never loaded: its persistent id already names its type, and the rebuild call carries the shape.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class HeaderError(ValueError):
    """A file whose structure cannot be read. kind: "refused" (it holds a global other than a state dict's, which
    a full unpickle would call), "corrupt", or "not a state dict"."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class _Refused(pickle.UnpicklingError):
    pass


@dataclass(frozen=True)
class TensorHeader:
    shape: tuple[int, ...]
    dtype: torch.dtype


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


def _rebuild_tensor(storage: _StorageType, _offset, size, _stride, *_rest) -> TensorHeader:
    return TensorHeader(tuple(int(s) for s in size), storage.dtype)


def _rebuild_parameter(data: TensorHeader, *_rest) -> TensorHeader:
    return data


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise _Refused(f"global '{module}.{name}' is not one of a state dict's")

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: the same plus view metadata
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise _Refused(f"persistent id {pid!r} is not a tensor storage")
        return pid[1]


def _load(file: BinaryIO) -> object:
    return _HeaderUnpickler(file).load()


def _legacy(file: BinaryIO) -> object:
    if _load(file) != LEGACY_MAGIC:
        raise HeaderError("corrupt", "neither a zip archive nor a legacy torch.save file (its magic number is wrong)")
    _load(file)  # protocol version
    _load(file)  # system info (byte order, type sizes)
    return _load(file)


def read_state_dict_header(path: Path) -> dict[str, TensorHeader]:
    """{name: TensorHeader} of the state dict in a torch.save file; reads its structure's pickle only."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
                if len(pickles) != 1:
                    raise HeaderError("corrupt", f"the zip archive holds {len(pickles)} data.pkl, not one")
                with archive.open(pickles[0]) as file:
                    state = _load(file)
        else:
            with path.open("rb") as file:
                state = _legacy(file)
    except HeaderError:
        raise
    except _Refused as error:
        raise HeaderError("refused", str(error)) from error
    except (pickle.UnpicklingError, EOFError, OSError, zipfile.BadZipFile, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as error:
        raise HeaderError("corrupt", f"{type(error).__name__}: {error}") from error
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, TensorHeader) for k, v in state.items()
    ):
        raise HeaderError("not a state dict", "a mapping of names to tensors was expected")
    return dict(state)
