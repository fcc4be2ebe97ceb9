"""Which preset a checkpoint has and what of it a generation or the panel follows, as plain functions (no webui
import). sing_webui.presets passes the live objects: the store in the webui's data folder, the webui's CheckpointInfo
(read here: .title, .shorthash, .name, .filename), the loaded model (.sd_checkpoint_info) and how to read a family
and a module's latent width; tests hand stand-ins with just those attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sing_core.args import PRESET_KEYS, SingArgs, split_module_label
from sing_core.host_family import SERVED_FAMILIES, HostFamily, HostFamilyError, read_host_family
from sing_core.kinds import ModuleKind
from sing_core.library import UnknownModuleError
from sing_core.presets import Preset, PresetError, PresetStore, apply_preset
from sing_core.weights import CheckpointError

# A module's latent width and kind by name (UnknownModuleError, CheckpointError): what decides where it serves.
ModuleFit = Callable[[str], tuple[int, ModuleKind]]


class NotFoundError(LookupError):
    """No checkpoint (or no preset) by that name; answered with 404."""


def find(store: PresetStore, info) -> Preset | None:
    """The preset of a checkpoint: by title, by short hash (a renamed file), or, for a checkpoint the webui has not
    hashed yet (its title is the bare name), by name."""
    found = store.find(info.title, info.shorthash)
    if found is None and info.shorthash is None:
        found = next((p for title, p in store.all().items() if split_module_label(title)[0] == info.name), None)
    return found


def refusal(preset: Preset, family: HostFamily, module_fit: ModuleFit) -> str | None:
    """Why the preset cannot be followed as saved on a checkpoint of that family (its module's kind decides:
    HostFamily.refusal); None when it can."""
    if not preset.values["enabled"]:
        return None
    try:
        return family.refusal(*module_fit(preset.values["module"]))
    except (UnknownModuleError, CheckpointError):  # prepare() reports the module itself, naming the fix
        return None if family.family in SERVED_FAMILIES else f"the checkpoint is {family.family}"


def follow(args: SingArgs, preset: Preset, why: str | None) -> tuple[SingArgs, str | None]:
    """The preset's values over `args` (where they follow it), never enabling the module where `why` refuses it;
    the console note says so, with the reason."""
    followed, note = apply_preset(args, preset, checkpoint_fits=why is None)
    return followed, (f"{note} ({why})" if note else None)


def apply(p, args: SingArgs, store: PresetStore, loaded_family: Callable[[Any], HostFamily],
          module_fit: ModuleFit) -> tuple[SingArgs, str | None]:
    """The args of a generation after its checkpoint's preset (p.sd_model.sd_checkpoint_info), where they follow
    it; a note for the console where the preset was not followed as saved."""
    if not args.follow_preset:
        return args, None
    info = getattr(p.sd_model, "sd_checkpoint_info", None)
    preset = find(store, info) if info is not None else None
    if preset is None:
        return args, None
    return follow(args, preset, refusal(preset, loaded_family(p.sd_model), module_fit))


def checkpoint_family(info, model, loaded_family: Callable[[Any], HostFamily]) -> HostFamily:
    """The loaded model's own family when `info` is the loaded checkpoint (model.sd_checkpoint_info.filename), else
    read from the file's header (HostFamilyError for a .ckpt)."""
    if model is not None and getattr(model.sd_checkpoint_info, "filename", None) == info.filename:
        return loaded_family(model)
    return read_host_family(info.filename)


def panel_values(info, store: PresetStore, family: Callable[[], HostFamily],
                 module_fit: ModuleFit) -> tuple[dict[str, Any] | None, str]:
    """What the panel shows for a checkpoint while following: its preset as it will be applied (None without
    one), and a line saying so."""
    preset = find(store, info)
    if preset is None:
        return None, f"No preset for {info.title}: the panel's defaults."
    try:
        why = refusal(preset, family(), module_fit)
    except HostFamilyError:
        why = None  # a .ckpt not loaded yet: the generation decides on the loaded model
    followed, note = follow(SingArgs(), preset, why)
    return followed.preset(), (f"{note}." if note else f"Following the preset for {info.title}.")


def panel_shows(preset_values: Mapping[str, Any] | None, panel_defaults: Mapping[str, Any],
                default_module: Callable[[], str]) -> dict[str, Any]:
    """The panel's values while following: the preset's, else the panel's own defaults (ui-config.json included,
    as a generation uses them); an empty module shows the one a generation would use (Settings' default)."""
    values = dict(preset_values if preset_values is not None else panel_defaults)
    values["module"] = values["module"] or default_module()
    return values


def checked_preset(title: str, values: Mapping[str, Any], family: Callable[[], HostFamily],
                   module_fit: ModuleFit) -> SingArgs:
    """A preset's values checked for saving on checkpoint `title`: ArgsError for bad values, UnknownModuleError for
    a module not installed, PresetError where it would enable the module on a checkpoint it cannot serve."""
    checked = SingArgs.from_dict(values, source=f"the preset for {title!r}", allowed=PRESET_KEYS)
    if checked.module or checked.enabled:
        fit = module_fit(checked.module)
        if checked.enabled:
            why = family().refusal(*fit)
            if why:
                raise PresetError(f"SingDiffusion: a preset cannot enable the module on {title}: {why}. "
                                  "Save it with enabled false, or choose a module made for this checkpoint.")
    return checked


def stored_title(name: str, store: PresetStore, checkpoint_info: Callable[[str], Any]) -> str | None:
    """The title a preset is saved under for `name`: a stored title itself, or any name of a checkpoint the webui
    lists (checkpoint_info) whose preset is found; None when none is."""
    if name in store.all():
        return name
    info = checkpoint_info(name)
    found = find(store, info) if info is not None else None
    return found.checkpoint if found is not None else None
