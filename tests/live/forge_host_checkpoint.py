"""Build a random checkpoint that a real Stable Diffusion WebUI Forge detects as SD-1.5 (or SDXL) and loads.

Run it with Forge's own interpreter, in no particular folder: it builds the parts with Forge's classes and configs.

    FORGE_PYTHON tests/live/forge_host_checkpoint.py --forge-dir FORGE_DIR --out-dir DIR [--name N] [--seed S]
        [--family sd15|sdxl] [--latent-channels C]

Forge recognises a checkpoint from its UNet's shapes (huggingface_guess) and then builds every part from fixed
configs it ships: SD-1.5 needs model_channels 320, context 768, no linear projection and no adm; SDXL needs
context 2048, adm 2816, linear projections and input transformer depths [0, 0, 2, 2, 10, 10]. The rest of the UNet
is free, so it is reduced (one level for SD-1.5; 320 wide throughout for SDXL). The VAE and CLIP-L are full size,
since Forge loads them into fixed-size models without initialising them first (a missing key would be whatever
memory held, or no weight at all). SDXL's 694 M-parameter CLIP-G is all zeros: never meant to give a usable
conditioning, only to load (the SDXL checkpoint exists to be refused); it makes that file 1.9 GB.

The file is in the original ldm key layout a downloaded checkpoint has (model.diffusion_model.*,
first_stage_model.*, cond_stage_model.transformer.text_model.* or conditioner.embedders.*). The VAE gets the same
brightness path as tiny_host_checkpoint.py's (Forge's VAE uses ldm's block names). The last line printed is a
JSON report like that builder's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tiny_host_checkpoint import builder_arguments, print_report, reinit_zero_layers, wire_brightness_path

SD15_REPO = "backend/huggingface/runwayml/stable-diffusion-v1-5"
SDXL_REPO = "backend/huggingface/stabilityai/stable-diffusion-xl-base-1.0"
SD15_UNET = {
    "model_channels": 320, "channel_mult": [1], "num_res_blocks": [1], "transformer_depth": [1],
    "transformer_depth_output": [1, 1], "transformer_depth_middle": 1, "context_dim": 768, "num_heads": 8,
    "num_head_channels": -1, "use_linear_in_transformer": False, "adm_in_channels": None,
}  # fmt: skip
SDXL_UNET = {
    "model_channels": 320, "channel_mult": [1, 1, 1], "num_res_blocks": [2, 2, 2],
    "transformer_depth": [0, 0, 2, 2, 10, 10], "transformer_depth_output": [0] * 9, "transformer_depth_middle": -1,
    "context_dim": 2048, "num_heads": -1, "num_head_channels": 64, "use_linear_in_transformer": True,
    "adm_in_channels": 2816, "num_classes": "sequential",
}  # fmt: skip
# huggingface_guess class each family must be detected as
DETECTED = {"sd15": "SD15", "sdxl": "SDXL"}
FULL_SIZE_GROUP = tuple(range(16))  # the first GroupNorm group of the VAE's 512-channel blocks
CLIP_G_LAYERS = 32


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = builder_arguments(__doc__.splitlines()[0], "forge", "Forge", "UNet in/out channels (the VAE keeps 4)")
    parser.add_argument("--family", choices=sorted(DETECTED), default="sd15")
    return parser.parse_args(argv)


def import_forge(forge_dir: Path) -> None:
    """Forge's backend reads its flags from sys.argv at import: --always-cpu keeps it off CUDA."""
    sys.path.insert(0, str(forge_dir))
    sys.path.insert(0, str(forge_dir / "repositories" / "huggingface_guess"))
    sys.path.insert(0, str(forge_dir / "packages_3rdparty"))  # gguf, which backend.utils imports
    sys.argv = [sys.argv[0], "--always-cpu"]


def build_unet(family: str, latent_channels: int) -> torch.nn.Module:
    from backend.nn.unet import IntegratedUNet2DConditionModel

    config = dict(SD15_UNET if family == "sd15" else SDXL_UNET)
    return IntegratedUNet2DConditionModel(in_channels=latent_channels, out_channels=latent_channels,
                                          use_spatial_transformer=True, **config).eval()


def build_vae(repo: Path) -> torch.nn.Module:
    from backend.nn.vae import IntegratedAutoencoderKL

    return IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(repo / "vae")).eval()


def build_clip_l(repo: Path) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel

    model = CLIPTextModel(CLIPTextConfig.from_pretrained(repo / "text_encoder")).eval()
    with torch.no_grad():  # a mean in the text output, so that the conditioning moves the UNet
        model.text_model.final_layer_norm.weight.normal_(1.0, 0.1)
        model.text_model.final_layer_norm.bias.normal_(0.5, 0.5)
    return model


def clip_g_open_clip_keys() -> dict[str, torch.Tensor]:
    """SDXL's CLIP-G (32 layers, width 1280, MLP 5120) in the open_clip layout SDXL checkpoints use, all zeros
    but the layer norms' scales and the positional embedding, in fp16: Forge's loader needs every key (its layers
    have no weight until loaded). With zero layers the hidden states are the positional embedding, carried by the
    residual stream: random, so that its mean is not 0 (the webui's emphasis divides by the conditioning's mean, and a
    zero tower gave NaN crossattn rows)."""
    width, mlp = 1280, 5120

    def zeros(*shape):
        return torch.zeros(*shape, dtype=torch.float16)

    def ones(*shape):
        return torch.ones(*shape, dtype=torch.float16)

    positional = (torch.randn(77, width) * 0.5 + 0.2).to(torch.float16)
    keys = {"token_embedding.weight": zeros(49408, width), "positional_embedding": positional,
            "ln_final.weight": ones(width), "ln_final.bias": zeros(width), "text_projection": zeros(width, width)}
    for layer in range(CLIP_G_LAYERS):
        block = f"transformer.resblocks.{layer}."
        keys.update({
            block + "ln_1.weight": ones(width), block + "ln_1.bias": zeros(width),
            block + "ln_2.weight": ones(width), block + "ln_2.bias": zeros(width),
            block + "attn.in_proj_weight": zeros(3 * width, width), block + "attn.in_proj_bias": zeros(3 * width),
            block + "attn.out_proj.weight": zeros(width, width), block + "attn.out_proj.bias": zeros(width),
            block + "mlp.c_fc.weight": zeros(mlp, width), block + "mlp.c_fc.bias": zeros(mlp),
            block + "mlp.c_proj.weight": zeros(width, mlp), block + "mlp.c_proj.bias": zeros(width),
        })  # fmt: skip
    return {f"conditioner.embedders.1.model.{key}": value for key, value in keys.items()}


def prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in module.state_dict().items()}


class ScaledVae:
    """The sampler-scale decode/encode the brightness measurement expects (ldm's decode_first_stage and kin)."""

    def __init__(self, vae: torch.nn.Module, scale: float):
        self.vae, self.scale = vae, scale

    def decode_first_stage(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent / self.scale)

    def encode_first_stage(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image)

    def get_first_stage_encoding(self, encoded: torch.Tensor) -> torch.Tensor:
        return encoded * self.scale


def detected_family(state: dict[str, torch.Tensor]) -> str:
    import huggingface_guess

    return type(huggingface_guess.guess(state)).__name__


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    forge_dir = args.forge_dir.resolve()
    import_forge(forge_dir)
    from safetensors.torch import save_file
    from tiny_host_checkpoint import measure_brightness_response

    torch.manual_seed(args.seed)
    repo = forge_dir / (SD15_REPO if args.family == "sd15" else SDXL_REPO)
    unet, vae, clip_l = build_unet(args.family, args.latent_channels), build_vae(repo), build_clip_l(repo)
    with torch.no_grad():
        revived = reinit_zero_layers(unet)
        wire_brightness_path(vae, 4, carried=FULL_SIZE_GROUP)
        scale = json.loads((repo / "vae" / "config.json").read_text()).get("scaling_factor", 0.18215)
        response = measure_brightness_response(ScaledVae(vae, scale), 4, args.seed)

    state = prefixed("model.diffusion_model.", unet) | prefixed("first_stage_model.", vae)
    text_prefix = "cond_stage_model.transformer." if args.family == "sd15" else "conditioner.embedders.0.transformer."
    state |= prefixed(text_prefix, clip_l)
    state = {key: value.detach().to(torch.float16).contiguous().clone() for key, value in state.items()
             if not key.endswith("position_ids")}
    if args.family == "sdxl":
        state |= clip_g_open_clip_keys()
    detected = detected_family(dict(state))
    if detected != DETECTED[args.family] and not (args.latent_channels != 4 and args.family == "sd15"):
        raise SystemExit(f"forge_host_checkpoint: Forge's huggingface_guess detects this {args.family} checkpoint as "
                         f"{detected}, not {DETECTED[args.family]}: the builder no longer matches this Forge")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out_dir / f"{args.name}.safetensors"
    save_file(state, str(checkpoint))
    return print_report(checkpoint, state, revived, response, family=args.family, detected_as=detected,
                        latent_channels=args.latent_channels, text_width=clip_l.config.hidden_size,
                        unet_parameters=sum(p.numel() for p in unet.parameters()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
