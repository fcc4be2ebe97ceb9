"""Test-only ComfyUI nodes (linked into the live tier's own custom_nodes/, never shipped): a probe that records what
a sampler really got, and a small SDXL-shaped model built by ComfyUI's own classes.

SingProbe (MODEL -> MODEL, input `tag`) writes $SING_PROBE_DIR/<tag>.safetensors after each sampling: the unit
noise x1, the latent, the sigmas, the guider's cfg and conds as the sampler holds them, and the first input the UNet
got (x at the first apply_model call, σ form). It records at OUTER_SAMPLE, which runs before every SAMPLER_SAMPLE
wrapper, so where it sits in the graph does not matter.
"""

import os
from pathlib import Path

import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
import torch
from comfy.patcher_extension import WrappersMP
from safetensors.torch import save_file


class Recorder:
    def __init__(self, tag):
        self.tag, self.tensors = tag, None

    def outer_sample(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        self.tensors = {"noise": noise.clone(), "latent": latent_image.clone(), "sigmas": sigmas.clone(),
                        "cfg": torch.tensor(float(getattr(guider, "cfg", 1.0)))}
        for side, conds in guider.conds.items():
            for i, cond in enumerate(conds):
                self.tensors[f"{side}.{i}"] = cond["cross_attn"].clone()
        out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        self.tensors["output"] = out.clone()
        folder = Path(os.environ["SING_PROBE_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {key: value.detach().float().cpu().contiguous() for key, value in self.tensors.items()}
        save_file(tensors, str(folder / f".{self.tag}.tmp"))
        (folder / f".{self.tag}.tmp").replace(folder / f"{self.tag}.safetensors")
        return out

    def apply_model(self, executor, x, t, *args, **kwargs):
        if self.tensors is not None and "first_input" not in self.tensors:
            self.tensors["first_input"] = x.clone()
            self.tensors["first_sigma"] = t.clone()
        return executor(x, t, *args, **kwargs)


class SingProbe:
    CATEGORY = "testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "probe"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's name)
        return {"required": {"model": ("MODEL",), "tag": ("STRING", {"default": "probe"})}}

    def probe(self, model, tag):
        recorder = Recorder(tag)
        m = model.clone()
        m.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, "sing_probe", recorder.outer_sample)
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "sing_probe", recorder.apply_model)
        return (m,)


class SingTinySDXL:
    """A real ComfyUI SDXL model object (model_base.SDXL, SDXL latent format) with a tiny UNet: no weights file."""

    CATEGORY = "testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's name)
        return {"required": {}}

    def build(self):
        unet_config = {"model_channels": 32, "use_linear_in_transformer": True, "transformer_depth": [0, 1],
                       "context_dim": 2048, "adm_in_channels": 2816, "use_temporal_attention": False,
                       "in_channels": 4, "out_channels": 4, "num_res_blocks": [1, 1], "channel_mult": [1, 2],
                       "transformer_depth_middle": 1, "transformer_depth_output": [0, 0, 1, 1],
                       "use_spatial_transformer": True, "legacy": False, "image_size": 32, "use_checkpoint": False,
                       "num_head_channels": 16, "use_temporal_resblock": False}
        config = comfy.supported_models.SDXL(unet_config)
        model = config.get_model({}, device=torch.device("cpu"))
        patcher = comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                                   offload_device=comfy.model_management.unet_offload_device())
        return (patcher,)


class SingSaveConditioning:
    """Writes a CONDITIONING's text embedding to $SING_PROBE_DIR/<tag>.safetensors (what the module was given)."""

    CATEGORY = "testing"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's name)
        return {"required": {"conditioning": ("CONDITIONING",), "tag": ("STRING", {"default": "cond"})}}

    def save(self, conditioning, tag):
        folder = Path(os.environ["SING_PROBE_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"cond.{i}": tensor.detach().float().cpu().contiguous()
                   for i, (tensor, _) in enumerate(conditioning)}
        save_file(tensors, str(folder / f".{tag}.tmp"))
        (folder / f".{tag}.tmp").replace(folder / f"{tag}.safetensors")
        return {}


class SingBatchConditioning:
    """Three CONDITIONINGs as one of batch 3 (text embedding and pooled output stacked): a prompt per image."""

    CATEGORY = "testing"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802  (ComfyUI's name)
        return {"required": {"a": ("CONDITIONING",), "b": ("CONDITIONING",), "c": ("CONDITIONING",)}}

    def batch(self, a, b, c):
        parts = [a[0], b[0], c[0]]
        options = dict(parts[0][1])
        if options.get("pooled_output") is not None:
            options["pooled_output"] = torch.cat([part[1]["pooled_output"] for part in parts])
        return ([[torch.cat([part[0] for part in parts]), options]],)


NODE_CLASS_MAPPINGS = {"SingProbe": SingProbe, "SingTinySDXL": SingTinySDXL,
                       "SingSaveConditioning": SingSaveConditioning, "SingBatchConditioning": SingBatchConditioning}
