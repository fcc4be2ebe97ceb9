"""Per-checkpoint presets in the webui: where they are kept, which checkpoint a name means, whether a module may be
enabled on it, and their place in the resolution order (X/Y/Z > explicit args > preset > UI defaults).

The file lives in the webui's data folder (it survives extension updates). Presets are keyed by the checkpoint's
title ("name.safetensors [shorthash]", as the checkpoint dropdown shows it) with the short hash recorded, so a
renamed file still finds its preset. A preset never enables a module on a checkpoint it cannot serve: refused when
saved, and ignored with a console note when applied (a checkpoint file may have been replaced since). Those
decisions are plain functions in sing_webui.preset_rules; this module hands them the webui's objects.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from modules import paths, sd_models

from sing_core.args import SingArgs
from sing_core.checkpoint import describe
from sing_core.host_family import HostFamily
from sing_core.kinds import ModuleKind
from sing_core.presets import Preset, PresetStore
from sing_webui import host, options, preset_rules
from sing_webui.preset_rules import NotFoundError

FILE_NAME = "singdiffusion_presets.json"


@functools.cache
def store() -> PresetStore:
    return PresetStore(Path(paths.data_path) / FILE_NAME)


def loaded_model():
    """The model in use, without making the webui load one (shared.sd_model would)."""
    return sd_models.model_data.sd_model


def checkpoint_info(name: str | None):
    """The webui's CheckpointInfo for a title, file name, model name or hash exactly as the webui lists them."""
    if not name:
        return None
    return sd_models.checkpoint_aliases.get(name)


def module_fit(name: str) -> tuple[int, ModuleKind]:
    """The module's latent width and kind, from its header and config (no tensor data)."""
    info = describe(options.find_module(name).path)
    return info.latent_channels, info.module_kind


def loaded_family(sd_model) -> HostFamily:
    return HostFamily(host.family(sd_model), host.latent_channels(sd_model))


def checkpoint_family(info) -> HostFamily:
    """The loaded model's own family when `info` is loaded, else read from the file's header."""
    return preset_rules.checkpoint_family(info, loaded_model(), loaded_family)


def apply(p, args: SingArgs) -> SingArgs:
    """The preset's values for the checkpoint of this generation when `args` follow it (hook.effective_args)."""
    followed, note = preset_rules.apply(p, args, store(), loaded_family, module_fit)
    if note:
        print(f"SingDiffusion: {note}", flush=True)
    return followed


def panel_values(info) -> tuple[dict[str, Any] | None, str]:
    """What the panel shows for a checkpoint while following: its preset as it will be applied (None without
    one), and a line saying so."""
    return preset_rules.panel_values(info, store(), lambda: checkpoint_family(info), module_fit)


def save(checkpoint: str, values: dict[str, Any]) -> Preset:
    """Check and store a preset. NotFoundError for an unknown checkpoint; ArgsError, UnknownModuleError,
    PresetError (and HostFamilyError, CheckpointError) for a preset that cannot be saved, each saying why."""
    info = checkpoint_info(checkpoint)
    if info is None:
        raise NotFoundError(f"no checkpoint {checkpoint!r}; give a title, file name or hash as listed by "
                            "/sdapi/v1/sd-models (refresh checkpoints after copying one in)")
    info.calculate_shorthash()  # the key is the title with its hash, as the dropdown shows it once loaded
    checked = preset_rules.checked_preset(info.title, values, lambda: checkpoint_family(info), module_fit)
    return store().put(info.title, info.shorthash, checked.preset())


def delete(checkpoint: str) -> str:
    """Remove the preset saved under `checkpoint` (a stored title, or any name of the checkpoint); its title."""
    title = preset_rules.stored_title(checkpoint, store(), checkpoint_info)
    if title is None or not store().delete(title):
        raise NotFoundError(f"no SingDiffusion preset is saved for {checkpoint!r}; saved: "
                            f"{', '.join(store().all()) or 'none'}")
    return title


def listing() -> dict[str, Any]:
    presets = store().all()
    model = loaded_model()
    return {
        "file": str(store().path),
        "checkpoint_in_use": getattr(getattr(model, "sd_checkpoint_info", None), "title", None),
        "presets": {title: preset.to_json() for title, preset in presets.items()},
        "warnings": list(store().warnings),
    }
