"""Per-checkpoint presets in the webui: where they are kept, which checkpoint a name means, whether a module may be
enabled on it, and their place in the resolution order (X/Y/Z > explicit args > preset > UI defaults).

The file lives in the webui's data folder (it survives extension updates). Presets are keyed by the checkpoint's
title ("name.safetensors [shorthash]", as the checkpoint dropdown shows it) with the short hash recorded, so a
renamed file still finds its preset. A preset never enables a module on a checkpoint it cannot serve: refused when
saved, and ignored with a console note when applied (a checkpoint file may have been replaced since).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from modules import paths, sd_models

from sing_core.args import PRESET_KEYS, SingArgs, split_module_label
from sing_core.host_family import SERVED_FAMILIES, HostFamily, HostFamilyError, read_host_family
from sing_core.library import UnknownModuleError
from sing_core.presets import Preset, PresetError, PresetStore, apply_preset
from sing_core.weights import CheckpointError, read_config, resolve
from sing_webui import host, options

FILE_NAME = "singdiffusion_presets.json"


class NotFoundError(LookupError):
    """No checkpoint (or no preset) by that name; answered with 404."""


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


def find(info) -> Preset | None:
    """The preset of a checkpoint: by title, by short hash (a renamed file), or, for a checkpoint the webui has not
    hashed yet (its title is the bare name), by name."""
    presets = store()
    found = presets.find(info.title, info.shorthash)
    if found is None and info.shorthash is None:
        found = next((p for title, p in presets.all().items() if split_module_label(title)[0] == info.name), None)
    return found


def module_latent_channels(name: str) -> int:
    return read_config(resolve(options.find_module(name).path)).in_channels


def loaded_family(sd_model) -> HostFamily:
    return HostFamily(host.family(sd_model), host.latent_channels(sd_model))


def checkpoint_family(info) -> HostFamily:
    """The loaded model's own family when `info` is loaded, else read from the file's header."""
    model = loaded_model()
    if model is not None and getattr(model.sd_checkpoint_info, "filename", None) == info.filename:
        return loaded_family(model)
    return read_host_family(info.filename)


def refusal(preset: Preset, family: HostFamily) -> str | None:
    """Why the preset cannot be followed as saved on a checkpoint of that family; None when it can."""
    if not preset.values["enabled"]:
        return None
    try:
        return family.refusal(module_latent_channels(preset.values["module"]))
    except (UnknownModuleError, CheckpointError):  # prepare() reports the module itself, naming the fix
        return None if family.family in SERVED_FAMILIES else f"the checkpoint is {family.family}"


def apply(p, args: SingArgs) -> SingArgs:
    """The preset's values for the checkpoint of this generation when `args` follow it (hook.effective_args)."""
    if not args.follow_preset:
        return args
    info = getattr(p.sd_model, "sd_checkpoint_info", None)
    preset = find(info) if info is not None else None
    if preset is None:
        return args
    why = refusal(preset, loaded_family(p.sd_model))
    followed, note = apply_preset(args, preset, checkpoint_fits=why is None)
    if note:
        print(f"SingDiffusion: {note} ({why})", flush=True)
    return followed


def panel_values(info) -> tuple[dict[str, Any] | None, str]:
    """What the panel shows for a checkpoint while following: its preset as it will be applied (None without
    one), and a line saying so."""
    preset = find(info)
    if preset is None:
        return None, f"No preset for {info.title}: the panel's defaults."
    try:
        why = refusal(preset, checkpoint_family(info))
    except HostFamilyError:
        why = None  # a .ckpt not loaded yet: the generation decides on the loaded model
    followed, note = apply_preset(SingArgs(), preset, checkpoint_fits=why is None)
    return followed.preset(), (f"{note} ({why})." if note else f"Following the preset for {info.title}.")


def save(checkpoint: str, values: dict[str, Any]) -> Preset:
    """Check and store a preset. NotFoundError for an unknown checkpoint; ArgsError, UnknownModuleError,
    PresetError (and HostFamilyError, CheckpointError) for a preset that cannot be saved, each saying why."""
    info = checkpoint_info(checkpoint)
    if info is None:
        raise NotFoundError(f"no checkpoint {checkpoint!r}; give a title, file name or hash as listed by "
                            "/sdapi/v1/sd-models (refresh checkpoints after copying one in)")
    info.calculate_shorthash()  # the key is the title with its hash, as the dropdown shows it once loaded
    checked = SingArgs.from_dict(values, source=f"the preset for {info.title!r}", allowed=PRESET_KEYS)
    if checked.module or checked.enabled:
        channels = module_latent_channels(checked.module)
        if checked.enabled:
            refusal = checkpoint_family(info).refusal(channels)
            if refusal:
                raise PresetError(f"SingDiffusion: a preset cannot enable the module on {info.title}: {refusal}. "
                                  "Save it with enabled false, or choose a module made for this checkpoint.")
    return store().put(info.title, info.shorthash, checked.preset())


def delete(checkpoint: str) -> str:
    """Remove the preset saved under `checkpoint` (a stored title, or any name of the checkpoint); its title."""
    titles = store().all()
    title = checkpoint if checkpoint in titles else None
    info = checkpoint_info(checkpoint) if title is None else None
    found = find(info) if info is not None else None
    title = found.checkpoint if found is not None else title
    if title is None or not store().delete(title):
        raise NotFoundError(f"no SingDiffusion preset is saved for {checkpoint!r}; saved: "
                            f"{', '.join(titles) or 'none'}")
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
