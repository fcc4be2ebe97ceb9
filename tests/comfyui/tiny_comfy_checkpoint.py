"""Builds a random SD-1.5 checkpoint that ComfyUI detects as SD15, with ComfyUI's own interpreter and classes.

    COMFYUI_PYTHON tiny_comfy_checkpoint.py COMFYUI_DIR OUT.safetensors [SEED]

ComfyUI reads the family from state-dict shapes: SD15 is model_channels 320 and context 768 without linear
projections, and it builds the UNet from the detected layout, so a reduced UNet (2 levels, 1 res block each, 94 M
parameters) is still SD15. CLIP ViT-L and the VAE must be full size (ComfyUI builds them from fixed configs and leaves
missing weights uninitialised). The layers are taken from ComfyUI's classes on the meta device (no memory) and
filled with torch's default initialisation, norms at 1 and biases at 0, in the original ldm key layout. Prints a
JSON report (the detected config included) and exits non-zero if ComfyUI would not detect SD15.
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
VAE_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def shapes(comfy_dir: Path) -> dict[str, tuple[int, ...]]:
    sys.path.insert(0, str(comfy_dir))
    import comfy.options

    sys.argv = [sys.argv[0], "--cpu"]  # comfy.model_management reads the arguments: a CPU torch needs --cpu
    comfy.options.enable_args_parsing()
    import comfy.ldm.models.autoencoder
    import comfy.ops
    import comfy.sd1_clip
    import comfy.supported_models
    import torch
    from comfy.ldm.modules.diffusionmodules import openaimodel

    config = comfy.supported_models.SD15(dict(UNET_CONFIG))
    with torch.device("meta"):
        unet = openaimodel.UNetModel(**config.unet_config, device="meta", operations=comfy.ops.disable_weight_init)
        clip = comfy.sd1_clip.SDClipModel(device="meta")
        vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=VAE_CONFIG, embed_dim=4)
    out = {}
    for prefix, net in (("model.diffusion_model.", unet), ("cond_stage_model.", clip), ("first_stage_model.", vae)):
        out |= {prefix + key: tuple(t.shape) for key, t in net.state_dict().items()
                if not key.endswith(("logit_scale", "text_projection.weight"))}
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
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    import torch
    from safetensors.torch import save_file

    layout = shapes(comfy_dir)
    generator = torch.Generator().manual_seed(seed)
    state = {key: random_tensor(key, shape, generator).half() for key, shape in sorted(layout.items())}

    import comfy.model_detection

    detected = comfy.model_detection.model_config_from_unet(state, "model.diffusion_model.")
    report = {
        "path": str(out), "family": type(detected).__name__,
        "unet_parameters": sum(math.prod(s) for k, s in layout.items() if k.startswith("model.diffusion_model.")),
        "parameters": sum(math.prod(s) for s in layout.values()),
    }
    if report["family"] != "SD15":
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
