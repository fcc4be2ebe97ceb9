"""One More Step's release folders, as downloaded from Hugging Face, read as they are.

A release (h1t/oms_b_openclip_15_21, h1t/oms_b_openclip_xl, h1t/oms_l_mixclip_xl) is a diffusers pipeline folder:

    model_index.json             {"sd_pipeline": ["stable_diffusion", "StableDiffusionPipeline"], "oms_module": ...}
    oms_module/config.json       the time-free UNet's config (no time keys in the weights)
    oms_module/diffusion_pytorch_model[.fp16].safetensors
    oms_text_encoder/config.json a pointer to the text encoder the module reads (SD-2.1's text_encoder), no weights
    oms_tokenizer/               that encoder's tokenizer files

The module's latent family comes from `sd_pipeline` (the b modules for SD-1.x/2.x and for SDXL share one config, so
nothing else can tell them apart); the text it reads from oms_text_encoder/config.json (and the model index's class
for it). A folder whose family or text cannot be read that way is refused with what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sing_core.kinds import CLIP_L, OMS, OPENCLIP_H, SD, SDXL, SDXL_TEXT, ModuleKind

MODEL_INDEX = "model_index.json"
MODULE_FOLDER, TEXT_ENCODER_FOLDER, TOKENIZER_FOLDER = "oms_module", "oms_text_encoder", "oms_tokenizer"
WEIGHTS_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)
# sd_pipeline's diffusers class → the latent family of the module. The SDXL ControlNet/img2img pipelines share SDXL's.
PIPELINE_FAMILIES = {
    "StableDiffusionPipeline": SD,
    "StableDiffusionImg2ImgPipeline": SD,
    "StableDiffusionControlNetPipeline": SD,
    "StableDiffusionXLPipeline": SDXL,
    "StableDiffusionXLImg2ImgPipeline": SDXL,
    "StableDiffusionXLControlNetPipeline": SDXL,
}
CONVERT_WITH_KIND = (
    "convert it with `python -m sing_core convert FOLDER OUT.safetensors --method oms --family sd|sdxl "
    "--text openclip_h|sdxl`, naming what the module's model card says"
)


class OmsFolderError(ValueError):
    """An OMS folder whose parts or kind cannot be read; the message names the file and the fix."""


def oms_root(path: Path) -> Path | None:
    """The release root if `path` is an OMS release folder or its oms_module/ subfolder, else None."""
    for candidate in (path, path.parent):
        index = candidate / MODEL_INDEX
        if index.is_file() and MODULE_FOLDER in _read_json(index):
            if candidate == path.parent and path.name != MODULE_FOLDER:
                return None
            return candidate
    return None


def module_files(root: Path) -> tuple[Path, Path]:
    """(config.json, weights) of the release's oms_module/."""
    folder = root / MODULE_FOLDER
    config = folder / "config.json"
    if not config.is_file():
        raise OmsFolderError(f"{folder}: no config.json; download the whole {MODULE_FOLDER}/ folder of the release")
    for name in WEIGHTS_NAMES:
        if (folder / name).is_file():
            return config, folder / name
    raise OmsFolderError(
        f"{folder}: no weights ({', '.join(WEIGHTS_NAMES)}); download the release's {MODULE_FOLDER}/ weights too"
    )


def module_kind(root: Path) -> ModuleKind:
    """OMS, with the family from model_index.json's sd_pipeline and the text from oms_text_encoder/."""
    index = _read_json(root / MODEL_INDEX)
    pipeline = index.get("sd_pipeline")
    class_name = pipeline[-1] if isinstance(pipeline, list) and pipeline else None
    family = PIPELINE_FAMILIES.get(class_name) if isinstance(class_name, str) else None
    if family is None:
        raise OmsFolderError(
            f"{root / MODEL_INDEX}: sd_pipeline = {pipeline!r} does not name a Stable Diffusion 1.x/2.x or SDXL "
            f"pipeline, so the module's latent family is unknown; {CONVERT_WITH_KIND}"
        )
    return ModuleKind(OMS, family, text_kind(root, index))


def text_kind(root: Path, index: dict[str, Any]) -> str:
    """The text the module reads, from the model index's class for it and oms_text_encoder/config.json."""
    entry = index.get(TEXT_ENCODER_FOLDER)
    class_name = entry[-1] if isinstance(entry, list) and entry else ""
    config_path = root / TEXT_ENCODER_FOLDER / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    architectures = config.get("architectures") or []
    names = " ".join(str(v) for v in (class_name, config.get("_class_name"), *architectures))
    if "SDXL" in names or "text_encoder_2" in config:
        return SDXL_TEXT
    pointer = str(config.get("_name_or_path", ""))
    if "stable-diffusion-2" in pointer or config.get("hidden_act") == "gelu":
        return OPENCLIP_H  # SD-2's text_encoder: OpenCLIP ViT-H in CLIPTextModel form (gelu; CLIP-L uses quick_gelu)
    if config.get("hidden_act") == "quick_gelu":
        return CLIP_L
    raise OmsFolderError(
        f"{config_path}: cannot tell which text encoder the module reads (no config, or neither SD-2's OpenCLIP "
        f"ViT-H nor SDXL's encoders); {CONVERT_WITH_KIND}"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OmsFolderError(f"{path}: unreadable ({error}); download the release again") from error
    if not isinstance(data, dict):
        raise OmsFolderError(f"{path}: not a JSON object; download the release again")
    return data
