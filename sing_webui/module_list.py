"""The installed modules as rows (for the Modules panel and GET /singdiffusion/v1/modules), and converting a release
folder's .bin to .safetensors in place.

A row is read from the module's header and config (sing_core.checkpoint.describe: no tensor data); its short hash
is computed once per file version and cached. A module that cannot be read is listed with its error, not hidden.
"""

from __future__ import annotations

from typing import Any

from sing_core.checkpoint import describe
from sing_core.convert import convert_release_folder
from sing_core.library import ModuleEntry, ModuleLibrary
from sing_webui import options


def folder_label(entry: ModuleEntry, library: ModuleLibrary) -> str:
    return "models/SingDiffusion" if entry.root == library.roots[0] else "--singdiffusion-dir"


def is_convertible(entry: ModuleEntry) -> bool:
    """A release folder whose weights are still the pickled .bin."""
    return entry.is_release_folder and entry.weights.suffix == ".bin"


def row(entry: ModuleEntry, library: ModuleLibrary) -> dict[str, Any]:
    base = {"name": entry.name, "path": entry.relative_path, "folder": folder_label(entry, library),
            "format": "release folder (.bin)" if is_convertible(entry) else (
                "release folder (.safetensors)" if entry.is_release_folder else "single .safetensors"),
            "convertible": is_convertible(entry)}
    try:
        info = describe(entry.path)
    except Exception as error:  # a broken file is listed with the reason, so the user can fix or remove it
        return {**base, "hash": None, "latent_channels": None, "cross_attention_dim": None,
                "size_bytes": None, "kind": None, "error": str(error)}
    if info.module_kind.method == "oms" and entry.is_release_folder:
        base["format"] = "One More Step release folder"
    return {**base, "hash": info.short_hash, "latent_channels": info.latent_channels,
            "cross_attention_dim": info.cross_attention_dim, "size_bytes": info.size_bytes,
            "dtype": info.dtype, "has_text_encoder": info.has_text_encoder, "kind": info.module_kind.describe(),
            "error": None}


def rows(refresh: bool = False) -> list[dict[str, Any]]:
    library = options.refresh_library() if refresh else options.library()
    return [row(entry, library) for entry in library.entries.values()]


def convertible_names() -> list[str]:
    return [entry.name for entry in options.library().entries.values() if is_convertible(entry)]


def convert(name: str) -> dict[str, Any]:
    """Convert module `name` (a release folder holding a .bin); its row afterwards. UnknownModuleError for a name
    that is not installed, CheckpointError for one that is not convertible or cannot be read."""
    entry = options.library().resolve(name)
    written = convert_release_folder(entry.path)
    library = options.refresh_library()
    print(f"SingDiffusion: converted {entry.name}: wrote {written} (the .bin is kept)", flush=True)
    return row(library.entries[entry.name], library)


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):  # the unit the loop stops at is the one to print
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
