"""Finding installed modules and resolving the names users and API clients give.

A module is a release folder (config.json + diffusion_pytorch_model.{safetensors,bin}), named after the folder, One
More Step's release folder as downloaded (model_index.json + oms_module/ + ...), named after the folder, or one
.safetensors file of ours, named after the file without the extension. Names resolve only to what a scan of the
configured folders found, so no request can reach a path outside them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from sing_core.oms_folder import MODEL_INDEX, MODULE_FOLDER
from sing_core.oms_folder import WEIGHTS_NAMES as OMS_WEIGHTS

RELEASE_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
MAX_DEPTH = 3  # folders below a models folder that are searched; modules sit at the top or in a few sub-folders


class UnknownModuleError(LookupError):
    """No installed module has the name; the message lists what is installed."""


class ModuleGoneError(UnknownModuleError):
    """The module was listed by the last scan, but its file has since been removed or moved."""

    def __init__(self, entry: ModuleEntry):
        super().__init__(f"SingDiffusion module {entry.name!r} is gone: {entry.path} was removed or moved since the "
                         "module list was last read. Put it back, or refresh the list (🔄 beside Module, or POST "
                         "/singdiffusion/v1/refresh) and choose an installed module.")
        self.entry = entry


@dataclasses.dataclass(frozen=True)
class ModuleEntry:
    name: str
    path: Path  # the release folder or the .safetensors file
    root: Path  # the models folder it was found in
    weights: Path  # the file whose hash identifies the module

    @property
    def is_release_folder(self) -> bool:
        return self.path.is_dir()

    @property
    def relative_path(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    def stat_key(self) -> tuple[int, int]:
        """Changes when the weights file is replaced or rewritten; used to reload cached modules."""
        stat = self.weights.stat()
        return stat.st_size, stat.st_mtime_ns


def release_weights(folder: Path) -> Path | None:
    if not (folder / "config.json").is_file():
        return None
    return next((folder / name for name in RELEASE_WEIGHTS if (folder / name).is_file()), None)


def oms_release_weights(folder: Path) -> Path | None:
    """The weights of One More Step's release folder (model_index.json beside oms_module/), or None. Whether the
    folder's kind can be read is checked when the module is loaded, with a message that says what to do."""
    if not (folder / MODEL_INDEX).is_file():
        return None
    return next((folder / MODULE_FOLDER / name for name in OMS_WEIGHTS if (folder / MODULE_FOLDER / name).is_file()),
                None)


def _scan_root(root: Path) -> Iterable[ModuleEntry]:
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        weights = release_weights(here) or oms_release_weights(here)
        if weights is not None and here != root:
            dirs[:] = []  # a release folder's contents are its own
            yield ModuleEntry(here.name, here, root, weights)
            continue
        for file in sorted(files):
            if file.endswith(".safetensors") and not file.startswith("."):
                yield ModuleEntry(file[: -len(".safetensors")], here / file, root, here / file)


class ModuleLibrary:
    """The modules under a list of folders, scanned on demand; the first folder wins a name clash."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]]):
        self.roots = [Path(root) for root in roots]
        self.entries: dict[str, ModuleEntry] = {}
        self.shadowed: list[ModuleEntry] = []  # same name as an earlier entry: reported, not used

    def refresh(self) -> ModuleLibrary:
        entries: dict[str, ModuleEntry] = {}
        shadowed: list[ModuleEntry] = []
        for root in self.roots:
            if not root.is_dir():
                continue
            for entry in _scan_root(root):
                if entry.name in entries:
                    shadowed.append(entry)
                else:
                    entries[entry.name] = entry
        self.entries = dict(sorted(entries.items(), key=lambda item: item[0].lower()))
        self.shadowed = shadowed
        return self

    def names(self) -> list[str]:
        return list(self.entries)

    def resolve(self, name: str, short_hash: str | None = None, hash_of=None) -> ModuleEntry:
        """The entry called `name`. With `short_hash` and `hash_of(entry) -> str`, a module whose file was renamed
        is still found by its hash (infotext pasted from an older image). ModuleGoneError where the scan found it
        but its file is no longer there."""
        entry = self.entries.get(name)
        if entry is not None:
            if not entry.weights.is_file():
                raise ModuleGoneError(entry)
            return entry
        if short_hash and hash_of is not None:
            for candidate in self.entries.values():
                if hash_of(candidate) == short_hash:
                    return candidate
        if any(sep in name for sep in ("/", "\\")) or name in ("..", ".") or Path(name).is_absolute():
            raise UnknownModuleError(f"SingDiffusion module name {name!r} is a path; give a module's name as listed "
                                 f"(paths are not accepted, modules are looked up only in {self.describe_roots()})")
        installed = ", ".join(self.entries) or "none"
        raise UnknownModuleError(f"SingDiffusion module {name!r} is not installed (installed: {installed}). Put the "
                             f"module in {self.describe_roots()} and refresh the list.")

    def describe_roots(self) -> str:
        return " or ".join(str(root) for root in self.roots) or "no folder"
