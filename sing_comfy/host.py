"""Everything of ComfyUI this pack touches: the model folder, loading into ComfyUI's memory management, the model.

Imported only inside ComfyUI (it imports folder_paths and comfy.*).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import comfy.model_patcher
import folder_paths
from comfy import model_management

from sing_core.checkpoint import load_module
from sing_core.library import ModuleLibrary, UnknownModuleError

from .held import HeldModule

FOLDER_KEY = "singdiffusion"  # models/singdiffusion/, and the key of extra_model_paths.yaml
log = logging.getLogger("SingDiffusion")


class RemovedModuleError(UnknownModuleError):
    """A module ComfyUI listed whose file has since been removed."""


def register_folder() -> None:
    """models/singdiffusion/ first, then whatever extra_model_paths.yaml adds under the same key."""
    folder_paths.add_model_folder_path(FOLDER_KEY, str(Path(folder_paths.models_dir) / FOLDER_KEY), is_default=True)


def module_folder() -> str:
    """models/singdiffusion/ as this ComfyUI has it (the first folder of the key)."""
    return folder_paths.get_folder_paths(FOLDER_KEY)[0]


_listed: set[str] = set()  # every name a scan has found since ComfyUI started: a name gone from disk is named so


def library() -> ModuleLibrary:
    """The installed modules (release folders and our .safetensors), scanned now: a new file shows on refresh."""
    found = ModuleLibrary(folder_paths.get_folder_paths(FOLDER_KEY)).refresh()
    _listed.update(found.names())
    return found


def resolve(name: str):
    """The installed module called `name`; a module listed earlier whose file is gone is named as removed."""
    modules = library()
    try:
        return modules.resolve(name)
    except UnknownModuleError:
        if name in _listed:
            raise RemovedModuleError(f"SingDiffusion module {name!r} was removed from {modules.describe_roots()} since "
                                  "ComfyUI listed it: put it back, or refresh the node list (press R, or reload the "
                                  "page) and choose an installed module") from None
        raise


def file_state(name) -> str:
    """What identifies the named module's file now (size and modification time of its weights), for ComfyUI's
    IS_CHANGED; a module that cannot be found gives a value that never repeats, so the loader runs and says why."""
    try:
        entry = resolve(name)
        size, mtime_ns = entry.stat_key()
    except (LookupError, OSError, TypeError):
        return f"unavailable {time.monotonic_ns()}"
    return f"{entry.weights} {size} {mtime_ns}"


_loaded: dict[str, tuple[tuple, comfy.model_patcher.ModelPatcher]] = {}
_lock = threading.Lock()


def load(name: str) -> comfy.model_patcher.ModelPatcher:
    """The module called `name` in a ModelPatcher (ComfyUI loads it with the UNet and offloads it like it); loaded
    once, again only when its file changes. Reading is sing_core's: safetensors, or a weights-only unpickler for
    release .bin files, so a pickle payload never runs."""
    entry = resolve(name)
    device, offload = model_management.get_torch_device(), model_management.unet_offload_device()
    dtype = model_management.unet_dtype()
    key = (entry.stat_key(), str(device), str(offload), dtype)
    with _lock:
        cached = _loaded.get(str(entry.weights))
        if cached is not None and cached[0] == key:
            return cached[1]
        _loaded.pop(str(entry.weights), None)
        started = time.perf_counter()
        module = load_module(entry.path, device=offload, dtype=dtype)
        module.name = entry.name
        patcher = comfy.model_patcher.ModelPatcher(HeldModule(module), load_device=device, offload_device=offload)
        _loaded[str(entry.weights)] = (key, patcher)
    log.info("SingDiffusion: loaded %s [%s] from %s (%s) in %.2fs", entry.name, module.short_hash, entry.path,
             str(dtype).removeprefix("torch."), time.perf_counter() - started)
    return patcher
