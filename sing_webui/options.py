"""Settings > SingDiffusion, the folders modules are found in, and the text encoder files a module can use (SD-1.5's
CLIP-L for clip_l modules, SD-2's OpenCLIP ViT-H for openclip_h ones)."""

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
# SD-2's OpenCLIP ViT-H: inside an SD-2.x checkpoint (open_clip layout), standalone in that layout, or a diffusers
# SD-2 text_encoder/ (transformers layout, told from CLIP-L by its width).
OPENCLIP_H_KEYS = ("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
                   "transformer.resblocks.0.attn.in_proj_weight")
HF_TOKEN_EMBEDDING = "text_model.embeddings.token_embedding.weight"
OPENCLIP_H_WIDTH = 1024
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


@functools.lru_cache(maxsize=512)
def header_shapes(path: str, _mtime_ns: int) -> dict[str, tuple[int, ...]]:
    """A .safetensors file's tensor names and shapes (no data read), once per file version; {} if unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as file:
            return {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}  # noqa: SIM118
    except Exception:  # a broken or foreign file is simply not offered
        return {}


def shapes_of(path: Path) -> dict[str, tuple[int, ...]]:
    return header_shapes(str(path), path.stat().st_mtime_ns)


def is_clip_l(shapes: dict) -> bool:
    return any(key in shapes for key in CLIP_L_KEYS)


def is_openclip_h(shapes: dict) -> bool:
    hf_width = shapes.get(HF_TOKEN_EMBEDDING, (0, 0))[-1]
    return any(key in shapes for key in OPENCLIP_H_KEYS) or hf_width == OPENCLIP_H_WIDTH


def text_files(accepts) -> list[str]:
    """Text encoder files in the usual model folders whose header `accepts`, as paths relative to the models
    folder."""
    models = Path(paths.models_path)
    files = [path for folder in CLIP_FOLDERS if (models / folder).is_dir()
             for path in sorted((models / folder).glob("**/*.safetensors"))]
    return [path.relative_to(models).as_posix() for path in files if accepts(shapes_of(path))]


def clip_l_files() -> list[str]:
    """CLIP-L text encoders in the usual model folders, as paths relative to the models folder."""
    return text_files(is_clip_l)


def openclip_h_files() -> list[str]:
    """SD-2's OpenCLIP ViT-H text encoders (any SD-2.x checkpoint, a standalone file) in the usual model folders."""
    return text_files(is_openclip_h)


def chosen_file(key: str, what: str) -> Path | None:
    """The file chosen in Settings for `key`; None for Automatic. Only files under the models folder are
    accepted."""
    choice = opt(key)
    if not choice or choice == CLIP_AUTO:
        return None
    models = Path(paths.models_path).resolve()
    path = (models / choice).resolve()
    if models not in path.parents or not path.is_file():
        raise FileNotFoundError(f"SingDiffusion: the {what} file {choice!r} chosen in Settings > SingDiffusion is not "
                                f"a file under {models}; choose another or Automatic")
    return path


def clip_l_path() -> Path | None:
    """The CLIP-L file chosen in Settings; None for Automatic."""
    return chosen_file("clip_l", "CLIP-L text encoder")


def openclip_h_path(width: int) -> Path | None:
    """The OpenCLIP ViT-H file for openclip_h modules: the one chosen in Settings, else (Automatic) the first of the
    webui's checkpoints, by title, that holds a ViT-H text tower `width` wide (the module's; an SD-2.x checkpoint),
    told by its header (sing_core.text.find_text_encoder); None if there is none."""
    chosen = chosen_file("openclip_h", "OpenCLIP ViT-H text encoder")
    if chosen is not None:
        return chosen
    from modules import sd_models

    from sing_core.kinds import OPENCLIP_H
    from sing_core.text import find_text_encoder

    infos = sorted(sd_models.checkpoints_list.values(), key=lambda info: info.title.lower())
    return find_text_encoder(OPENCLIP_H, [info.filename for info in infos], width)


DEFAULTS = {
    "singdiffusion_default_module": "",
    "singdiffusion_clip_l": CLIP_AUTO,
    "singdiffusion_openclip_h": CLIP_AUTO,
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
    add("singdiffusion_openclip_h", option(
        "singdiffusion_openclip_h", "OpenCLIP ViT-H text encoder file", gr.Dropdown,
        lambda: {"choices": [CLIP_AUTO, *openclip_h_files()]}, refresh=lambda: None,
    ).info("SD-2's text encoder, read by One More Step's openclip modules (oms_b_openclip_15_21, oms_b_openclip_xl) "
           "with the 'module' text source: any SD-2.x checkpoint or a standalone file; Automatic: the first SD-2.x "
           "checkpoint among your checkpoints (an SD-2.x checkpoint in use lends its own with 'auto')"))
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

