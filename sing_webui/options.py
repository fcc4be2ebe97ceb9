"""Settings > SingDiffusion, the folders modules are found in, and the CLIP-L files the module can use."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import gradio as gr
from modules import paths, shared

from sing_core.library import ModuleEntry, ModuleLibrary
from sing_webui import resolve

SECTION = ("singdiffusion", "SingDiffusion")
CLIP_AUTO = "Automatic"
CLIP_FOLDERS = ("text_encoder", "text_encoders", "clip", "CLIP", "Stable-diffusion")
CLIP_L_KEYS = (
    "text_model.embeddings.token_embedding.weight",  # clip_l.safetensors as distributed
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",  # an SD-1.x checkpoint
)
DEVICE_CHOICES = ("webui", "cpu")
PRECISION_CHOICES = ("auto", "fp16", "bf16", "fp32")
MEMORY_CHOICES = ("keep on device", "move to CPU after use", "unload after use")


def module_roots() -> list[Path]:
    roots = [Path(paths.models_path) / "SingDiffusion"]
    extra = getattr(shared.cmd_opts, "singdiffusion_dir", None)
    if extra:
        roots.append(Path(extra))
    return roots


@functools.cache
def library() -> ModuleLibrary:
    return ModuleLibrary(module_roots()).refresh()


def refresh_library() -> ModuleLibrary:
    lib = library().refresh()
    for entry in lib.shadowed:
        print(f"SingDiffusion: {entry.path} is not used: a module named {entry.name!r} was found first "
              f"at {lib.entries[entry.name].path}")
    return lib


def find_module(name: str) -> ModuleEntry:
    """An installed module by name ("": the default module), rescanning once for one copied in while the webui
    runs (resolve.find_module). UnknownModuleError says what is installed and where modules go."""
    return resolve.find_module(name or default_module_name(), library(), refresh_library, module_roots())


def opt(key: str):
    """A SingDiffusion setting, falling back to its declared default before the settings page registered it."""
    key = f"singdiffusion_{key}"
    return getattr(shared.opts, key, DEFAULTS[key])


def default_module_name() -> str:
    """Settings' default module, else the first installed one, else "" (resolve.default_module_name)."""
    return resolve.default_module_name(opt("default_module"), library().names())


def clip_l_files() -> list[str]:
    """CLIP-L text encoders in the usual model folders, as paths relative to the models folder."""
    from safetensors import safe_open

    found = []
    models = Path(paths.models_path)
    for folder in CLIP_FOLDERS:
        for path in sorted((models / folder).glob("**/*.safetensors")) if (models / folder).is_dir() else []:
            try:
                with safe_open(str(path), framework="pt") as file:
                    keys = set(file.keys())
            except Exception:  # a broken or foreign file is simply not offered
                continue
            if any(key in keys for key in CLIP_L_KEYS):
                found.append(path.relative_to(models).as_posix())
    return found


def clip_l_path() -> Path | None:
    """The CLIP-L file chosen in Settings; None for Automatic. Only files under the models folder are accepted."""
    choice = opt("clip_l")
    if not choice or choice == CLIP_AUTO:
        return None
    models = Path(paths.models_path).resolve()
    path = (models / choice).resolve()
    if models not in path.parents or not path.is_file():
        raise FileNotFoundError(f"SingDiffusion: the CLIP-L file {choice!r} chosen in Settings > SingDiffusion is not "
                                f"a file under {models}; choose another or Automatic")
    return path


DEFAULTS = {
    "singdiffusion_default_module": "",
    "singdiffusion_clip_l": CLIP_AUTO,
    "singdiffusion_device": "webui",
    "singdiffusion_precision": "auto",
    "singdiffusion_memory": "keep on device",
    "singdiffusion_timings": False,
}


def on_ui_settings() -> None:
    def option(key, label, component=None, component_args=None, refresh=None):
        return shared.OptionInfo(DEFAULTS[key], label, component, component_args, refresh=refresh, section=SECTION)

    add = shared.opts.add_option
    add("singdiffusion_default_module", option(
        "singdiffusion_default_module", "Default module", gr.Dropdown,
        lambda: {"choices": library().names()}, refresh=refresh_library,
    ).info(f"modules in models/SingDiffusion{' and ' + os.fspath(module_roots()[1]) if len(module_roots()) > 1 else ''}"
           "; used when a generation names none (empty: the first installed)"))
    add("singdiffusion_clip_l", option(
        "singdiffusion_clip_l", "CLIP-L text encoder file", gr.Dropdown,
        lambda: {"choices": [CLIP_AUTO, *clip_l_files()]}, refresh=lambda: None,
    ).info("SD-1.5's text encoder for the 'module' text source: a clip_l.safetensors or any SD-1.x checkpoint; "
           "Automatic: the one inside the module file, else the loaded SD-1 checkpoint's own"))
    add("singdiffusion_device", option(
        "singdiffusion_device", "Device", gr.Radio, {"choices": DEVICE_CHOICES}).info("webui: where the UNet runs"))
    add("singdiffusion_precision", option(
        "singdiffusion_precision", "Precision", gr.Radio, {"choices": PRECISION_CHOICES},
    ).info("auto: the UNet's dtype on a GPU, fp32 on the CPU"))
    add("singdiffusion_memory", option(
        "singdiffusion_memory", "Memory", gr.Radio, {"choices": MEMORY_CHOICES},
    ).info("in Forge its memory manager may also take the module off the GPU when it needs room; with A1111's "
           "--lowvram or --medvram it always leaves the GPU after use"))
    add("singdiffusion_timings", option("singdiffusion_timings", "Print module timings in the console"))

