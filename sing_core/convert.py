"""Converting a module to our single .safetensors: a release folder's pickled .bin becomes a file that loads without
unpickling and faster. The source is never touched; the output appears atomically (checkpoint.save_module)."""

from __future__ import annotations

import os
from pathlib import Path

from sing_core.kinds import ModuleKind
from sing_core.weights import CheckpointError, resolve

RELEASE_SAFETENSORS = "diffusion_pytorch_model.safetensors"


def convert_module(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    half: bool = False,
    overwrite: bool = False,
    kind: ModuleKind | None = None,
) -> Path:
    """Write the module at `src` (release folder or module file) to `dst` (.safetensors, config and kind in its
    metadata). `kind` states the module's method, family and text where the source cannot."""
    from sing_core.checkpoint import load_module, save_module

    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise CheckpointError(f"{dst}: the output must be a .safetensors file")
    source = resolve(src, kind)
    if dst.exists() and dst.resolve() in (source.weights.resolve(), source.path.resolve()):
        raise CheckpointError(f"{dst}: that is the source itself; the source is never overwritten")
    if dst.exists() and not overwrite:
        raise CheckpointError(f"{dst}: already exists; pass --force to overwrite it")
    module = load_module(source.path, kind=kind)  # validates every key, shape and value
    return save_module(module, None, dst, half=half)


def convert_release_folder(folder: str | os.PathLike[str]) -> Path:
    """A release folder holding diffusion_pytorch_model.bin gets diffusion_pytorch_model.safetensors beside it.

    The module keeps its name (the folder's), so presets and infotext that name it still find it; the library
    prefers the .safetensors from then on, and the .bin stays where it was.
    """
    source = resolve(folder)
    if source.config_path is None:
        raise CheckpointError(f"{source.path.name}: a single .safetensors module file is already converted")
    if source.weights.suffix != ".bin":
        raise CheckpointError(f"{source.path.name}: already holds {source.weights.name}; nothing to convert")
    return convert_module(source.path, source.path / RELEASE_SAFETENSORS)
