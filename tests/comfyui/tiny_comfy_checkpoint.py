"""Builds a random checkpoint that ComfyUI detects as SD15, SD20 or SDXL, with ComfyUI's own interpreter and classes.

    COMFYUI_PYTHON tiny_comfy_checkpoint.py COMFYUI_DIR OUT.safetensors [sd15|sd20|sdxl] [SEED]

ComfyUI reads the family from state-dict shapes and builds the UNet from the detected layout, so a reduced UNet is
still that family: SD15 is model_channels 320 and context 768 without linear projections (2 levels, 1 res block
each, 94 M parameters); SD20 the same with context 1024 and linear projections; SDXL model_channels 320, context
2048, adm 2816 and transformer depths [0, 0, 2, 2, 10, 10] (3 levels of 2 res blocks, 320 wide throughout, no
transformers on the way up, as the Forge tier's reduced SDXL). The text encoders (CLIP ViT-L; SD-2's OpenCLIP ViT-H;
SDXL's CLIP-L and bigG) and the VAE must be full size (ComfyUI builds them from fixed configs and leaves missing
weights uninitialised). The layers are taken from ComfyUI's classes on the meta device (no memory), put in the
original ldm / sgm key layout with ComfyUI's own conversion for saving, and filled with torch's default
initialisation, norms at 1 and biases at 0. Prints a JSON report (the detected config included) and exits non-zero
if ComfyUI would not detect the family.
"""

import json
import math
import sys
from pathlib import Path

UNET_CONFIG = {
    "use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
    "num_res_blocks": [1, 1], "channel_mult": [1, 2], "transformer_depth": [1, 0], "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 0, 0], "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "use_linear_in_transformer": False, "context_dim": 768, "use_temporal_attention": False,
    "use_temporal_resblock": False,
}
UNET_CONFIGS = {
    "sd15": UNET_CONFIG,
    "sd20": {**UNET_CONFIG, "context_dim": 1024, "use_linear_in_transformer": True, "num_head_channels": 64,
             "num_heads": -1},
    "sdxl": {**UNET_CONFIG, "context_dim": 2048, "use_linear_in_transformer": True, "adm_in_channels": 2816,
             "num_classes": "sequential", "channel_mult": [1, 1, 1], "num_res_blocks": [2, 2, 2],
             "transformer_depth": [0, 0, 2, 2, 10, 10], "transformer_depth_output": [0] * 9,
             "transformer_depth_middle": -1, "num_head_channels": 64, "num_heads": -1},
}
DETECTED = {"sd15": "SD15", "sd20": "SD20", "sdxl": "SDXL"}
VAE_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def shapes(comfy_dir: Path, family: str = "sd15") -> dict[str, tuple[int, ...]]:
    sys.path.insert(0, str(comfy_dir))
    import comfy.options

    sys.argv = [sys.argv[0], "--cpu"]  # comfy.model_management reads the arguments: a CPU torch needs --cpu
    comfy.options.enable_args_parsing()
    import comfy.ldm.models.autoencoder
    import comfy.ops
    import comfy.sd1_clip
    import comfy.supported_models
    import comfy.text_encoders.sd2_clip
    import torch
    from comfy import sdxl_clip
    from comfy.ldm.modules.diffusionmodules import openaimodel

    config = getattr(comfy.supported_models, DETECTED[family])(dict(UNET_CONFIGS[family]))
    with torch.device("meta"):
        unet = openaimodel.UNetModel(**config.unet_config, device="meta", operations=comfy.ops.disable_weight_init)
        vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=VAE_CONFIG, embed_dim=4)
        if family == "sd15":
            clip = {"cond_stage_model." + key: t for key, t in comfy.sd1_clip.SDClipModel(device="meta")
                    .state_dict().items() if not key.endswith(("logit_scale", "text_projection.weight"))}
        else:  # ComfyUI's own conversion to the checkpoint layout (open_clip keys for ViT-H and bigG)
            model = (comfy.text_encoders.sd2_clip.SD2ClipModel if family == "sd20" else sdxl_clip.SDXLClipModel)
            state = {key: t for key, t in model(device="meta").state_dict().items()
                     if not key.endswith(("logit_scale", "position_ids"))}
            if family == "sdxl":  # SDXL's CLIP-L has no projection in the checkpoint layout
                state = {key: t for key, t in state.items() if key != "clip_l.transformer.text_projection.weight"}
            clip = {key: t for key, t in config.process_clip_state_dict_for_saving(state).items()
                    if not key.endswith(("logit_scale", "position_ids"))}
    out = {"model.diffusion_model." + key: tuple(t.shape) for key, t in unet.state_dict().items()}
    out |= {"first_stage_model." + key: tuple(t.shape) for key, t in vae.state_dict().items()}
    out |= {key: tuple(t.shape) for key, t in clip.items()}
    return out


def random_tensor(key: str, shape: tuple[int, ...], generator):
    import torch

    if len(shape) == 1:
        return torch.zeros(shape) if key.endswith("bias") else torch.ones(shape)
    if "embedding" in key:
        return torch.randn(shape, generator=generator) * 0.02
    fan_in = math.prod(shape[1:])
    bound = 1 / math.sqrt(fan_in)  # torch's default for Linear and Conv (kaiming_uniform, a = √5)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def main() -> int:
    comfy_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    family = sys.argv[3] if len(sys.argv) > 3 else "sd15"
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    import torch
    from safetensors.torch import save_file

    layout = shapes(comfy_dir, family)
    generator = torch.Generator().manual_seed(seed)
    state = {key: random_tensor(key, shape, generator).half() for key, shape in sorted(layout.items())}

    import comfy.model_detection

    detected = comfy.model_detection.model_config_from_unet(state, "model.diffusion_model.")
    report = {
        "path": str(out), "family": type(detected).__name__,
        "unet_parameters": sum(math.prod(s) for k, s in layout.items() if k.startswith("model.diffusion_model.")),
        "parameters": sum(math.prod(s) for s in layout.values()),
    }
    if report["family"] != DETECTED[family]:
        print(json.dumps(report))
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(out)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
