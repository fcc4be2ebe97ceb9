"""The two nodes. Their class names are a contract: saved workflows and API prompts name them."""

from __future__ import annotations

import logging
import weakref

from comfy.patcher_extension import WrappersMP

from sing_core.args import FIELD_BY_KEY
from sing_core.library import UnknownModuleError

from . import conds, family, hint, host
from .start import SingStart

TEXT_HELP = ("Optional: the module's text, from CLIPTextEncode fed by the module's text encoder (the CLIP of the clip "
             "input). Needed where the model's conditioning is another width than the module reads (a CLIP-L module "
             "on SD-2.x, an OpenCLIP-H One More Step module on SDXL); without it the sampler's own conditioning is "
             "used. One More Step never uses a negative: it guides against \"\".")
CLIP_HELP = ("Optional: the module's own text encoder, from which the node encodes module_prompt and One More Step's "
             "\"\" itself: SD-1.5's CLIP-L for SingDiffusion modules, any SD-2.x checkpoint's CLIP (or CLIPLoader type "
             "sd2) for One More Step's openclip modules, the SDXL checkpoint's own CLIP for 2048-wide modules.")
PROMPT_HELP = FIELD_BY_KEY["module_prompt"].help + " Encoded with the clip input."
WRAPPER_KEY = "singdiffusion"
log = logging.getLogger("SingDiffusion")

host.register_folder()


def schema_float(key: str) -> tuple:
    """A FLOAT input from the one argument schema (sing_core/args.py): default, range and help as every host has."""
    field = FIELD_BY_KEY[key]
    return ("FLOAT", {"default": field.default, "min": field.minimum, "max": field.maximum, "step": 0.05,
                      "tooltip": field.help})


class SingDiffusionModuleLoader:
    DESCRIPTION = ("Loads a start module from models/singdiffusion/: SingDiffusion's release folder (config.json + "
                   "weights), One More Step's release folder as downloaded (model_index.json + oms_module/ + ...), or "
                   "one .safetensors of ours.")
    CATEGORY = "advanced/model_patches/SingDiffusion"
    RETURN_TYPES = ("SING_MODULE",)
    RETURN_NAMES = ("sing_module",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's names)
        names = host.library().names()
        return {"required": {"module_name": (names, {"tooltip": hint.loader_tooltip(names, host.module_folder())})}}

    @classmethod
    def VALIDATE_INPUTS(cls, module_name=None):  # noqa: N802
        if module_name is None:  # ComfyUI has already answered "Required input is missing"
            return True
        if not isinstance(module_name, str):
            return f"module_name must be an installed module's name (a string), not {type(module_name).__name__}"
        try:
            host.resolve(module_name)
        except UnknownModuleError as error:
            return str(error) if host.library().names() else f"{error}\n{hint.no_module_text(host.module_folder())}"
        return True

    @classmethod
    def IS_CHANGED(cls, module_name=None):  # noqa: N802
        """The module's file as it is now: ComfyUI re-runs the loader (which reloads the module) when its file was
        replaced, rewritten or truncated, not only when the name changed."""
        return host.file_state(module_name)

    def load(self, module_name):
        return (host.load(module_name),)


class SingDiffusionApply:
    DESCRIPTION = ("Starts sampling from the module's one step from t = 1 (x̂0 + σ0·x1) instead of pure noise, for "
                   "SD-1.x/2.x and SDXL models (the module's latent family) sampled from an empty latent at full "
                   "denoise. SingDiffusion and One More Step modules.")
    CATEGORY = "advanced/model_patches/SingDiffusion"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's names)
        return {
            "required": {
                "model": ("MODEL",),
                "sing_module": ("SING_MODULE",),
                "guidance_scale": schema_float("guidance_scale"),
            },
            "optional": {
                "positive": ("CONDITIONING", {"tooltip": TEXT_HELP}),
                "negative": ("CONDITIONING", {"tooltip": TEXT_HELP}),
                "strength": schema_float("strength"),
                "clip": ("CLIP", {"tooltip": CLIP_HELP}),
                "module_prompt": ("STRING", {"multiline": True, "default": "", "tooltip": PROMPT_HELP}),
            },
        }

    def apply(self, model, sing_module, guidance_scale, positive=None, negative=None,
              strength=FIELD_BY_KEY["strength"].default, clip=None, module_prompt=""):
        module = sing_module.model.sing  # the patcher holds a HeldModule (held.py)
        kind = module.kind
        if module_prompt.strip():
            if clip is None:
                raise ValueError("SingDiffusion Apply: module_prompt is set but the clip input is not connected: "
                                 f"connect the module's text encoder to it ({family.CLIP_SOURCES[kind.text]})")
            if positive is not None:
                log.info("SingDiffusion: module_prompt replaces the Apply node's positive input")
            positive = encode(clip, module_prompt)
        empty = None
        if kind.uncond_is_empty_prompt:
            if negative is not None:
                log.info("SingDiffusion: One More Step guides against \"\", not a negative: the Apply node's negative "
                         "input is not used")
            negative = None
            if clip is not None and kind.needs_uncond(kind.effective_guidance(guidance_scale, None)):
                empty = encode_empty(clip)
        refusal = family.refusal(family.facts_of(model), kind, module.latent_channels, module.cross_attention_dim,
                                 own_text=positive is not None)
        if refusal:
            raise ValueError(refusal)
        # refuse bad text inputs now (SingDiffusion's scale follows the sampler's cfg, known only when it samples)
        conds.from_node(positive, negative, conds.Guidance([], [], kind.effective_guidance(guidance_scale, None),
                                                           kind=kind), empty)
        for name, conditioning in (("positive", positive), ("negative", negative), ("clip", empty)):
            if conditioning is not None:
                check_width(module, name, conditioning)
        patched = model.clone()
        patched.remove_wrappers_with_key(WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY)  # a second Apply replaces the first
        start = SingStart(sing_module, guidance_scale, positive, negative, strength, empty)
        patched.add_wrapper_with_key(WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, start)
        patched.set_additional_models(WRAPPER_KEY, [sing_module])
        return (patched,)


def encode(clip, text: str) -> list:
    """CONDITIONING of `text`, as CLIPTextEncode makes it with this CLIP."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


# One More Step's "" per CLIP object. ComfyUI re-runs the Apply node whenever its cached output was evicted (another
# graph ran between two prompts), and encoding "" with SDXL's two encoders on a CPU cost more than a whole sampling
# pass (bench_comfyui.py --family sdxl --node-times). A CLIP with other weights or layers is another object (ComfyUI
# clones it for LoRAs and CLIPSetLastLayer), so it gets its own entry; a dropped CLIP drops its entry.
_empty_by_clip: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def encode_empty(clip) -> list:
    """encode(clip, "") once per CLIP object."""
    try:
        return _empty_by_clip[clip]
    except KeyError:
        _empty_by_clip[clip] = encoded = encode(clip, "")
        return encoded


def check_width(module, name: str, conditioning: list) -> None:
    width = conds.embedding(conds.plain(conditioning, name)[0]).shape[-1]
    if width != module.cross_attention_dim:
        what = "the clip input's text" if name == "clip" else f"the {name} input"
        raise ValueError(f"SingDiffusion Apply: {what} is {width} wide and the module reads "
                         f"{module.cross_attention_dim}-wide text ({module.kind.describe()}): "
                         f"{family.TEXT_SOURCES[module.kind.text]}")


NODE_CLASS_MAPPINGS = {
    "SingDiffusionModuleLoader": SingDiffusionModuleLoader,
    "SingDiffusionApply": SingDiffusionApply,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SingDiffusionModuleLoader": "Load SingDiffusion Module",
    "SingDiffusionApply": "Apply SingDiffusion",
}
