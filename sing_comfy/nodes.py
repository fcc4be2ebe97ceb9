"""The two nodes. Their class names are a contract: saved workflows and API prompts name them."""

from __future__ import annotations

from comfy.patcher_extension import WrappersMP

from sing_core.args import FIELD_BY_KEY
from sing_core.library import UnknownModuleError

from . import conds, family, hint, host
from .start import SingStart

TEXT_HELP = ("Optional: the module's text, encoded with SD-1.5's CLIP-L (CLIPLoader, type stable_diffusion). Needed "
             "for SD-2.x models; without it the sampler's own conditioning is used.")
WRAPPER_KEY = "singdiffusion"

host.register_folder()


def schema_float(key: str) -> tuple:
    """A FLOAT input from the one argument schema (sing_core/args.py): default, range and help as every host has."""
    field = FIELD_BY_KEY[key]
    return ("FLOAT", {"default": field.default, "min": field.minimum, "max": field.maximum, "step": 0.05,
                      "tooltip": field.help})


class SingDiffusionModuleLoader:
    DESCRIPTION = ("Loads a SingDiffusion module from models/singdiffusion/ (a release folder with config.json, or "
                   "one .safetensors).")
    CATEGORY = "advanced/model_patches/SingDiffusion"
    RETURN_TYPES = ("SING_MODULE",)
    RETURN_NAMES = ("sing_module",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's names)
        names = host.library().names()
        return {"required": {"module_name": (names, {"tooltip": hint.loader_tooltip(names, host.module_folder())})}}

    @classmethod
    def VALIDATE_INPUTS(cls, module_name):  # noqa: N802
        try:
            host.library().resolve(module_name)
        except UnknownModuleError as error:
            return str(error) if host.library().names() else f"{error}\n{hint.no_module_text(host.module_folder())}"
        return True

    def load(self, module_name):
        return (host.load(module_name),)


class SingDiffusionApply:
    DESCRIPTION = ("Starts sampling from SingDiffusion's one DDIM step from t = 1 (x̂0 + σ0·x1) instead of pure "
                   "noise, for SD-1.x/2.x models sampled from an empty latent at full denoise.")
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
            },
        }

    def apply(self, model, sing_module, guidance_scale, positive=None, negative=None,
              strength=FIELD_BY_KEY["strength"].default):
        module = sing_module.model.sing  # the patcher holds a HeldModule (held.py)
        conds.from_node(positive, negative, conds.Guidance([], [], 0.0))  # refuse bad text inputs now
        if positive is not None:
            width = conds.embedding(conds.plain(positive, "positive")[0]).shape[-1]
            if width != module.cross_attention_dim:
                raise ValueError(f"SingDiffusion Apply: the positive input is {width} wide and the module reads "
                                 f"{module.cross_attention_dim}-wide text: encode it with SD-1.5's CLIP-L "
                                 "(CLIPLoader, type stable_diffusion)")
        refusal = family.refusal(family.facts_of(model), module.latent_channels, module.cross_attention_dim,
                                 own_text=positive is not None)
        if refusal:
            raise ValueError(refusal)
        patched = model.clone()
        patched.remove_wrappers_with_key(WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY)  # a second Apply replaces the first
        start = SingStart(sing_module, guidance_scale, positive, negative, strength)
        patched.add_wrapper_with_key(WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, start)
        patched.set_additional_models(WRAPPER_KEY, [sing_module])
        return (patched,)


NODE_CLASS_MAPPINGS = {
    "SingDiffusionModuleLoader": SingDiffusionModuleLoader,
    "SingDiffusionApply": SingDiffusionApply,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SingDiffusionModuleLoader": "Load SingDiffusion Module",
    "SingDiffusionApply": "Apply SingDiffusion",
}
