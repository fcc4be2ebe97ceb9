"""Write a tiny random SingDiffusion module in the release folder format, for the live tier.

The release format (PangzeCheung/SingDiffusion) is a folder holding config.json, a diffusers UNet2DConditionModel
config, and diffusion_pytorch_model.bin, a torch.save'd state dict of that UNet with its time conditioning removed
(every ResnetBlock2D has time_emb_proj = None, so those keys are absent). This runs in the test interpreter, which
has diffusers; the webui's interpreter is not needed.

A random module predicts an x̂0 whose mean is arbitrary, so its output convolution is re-initialised with a chosen
bias: the prediction's latent mean is close to `mean_offset`, which the tiny host checkpoint's VAE turns into a
visible brightness change (about +33 grey levels per +1 of latent mean).

    python tests/live/tiny_sing_module.py OUT_DIR [--seed S] [--mean-offset M] [--cross-attention-dim D]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

WEIGHTS_NAME = "diffusion_pytorch_model.bin"


def module_config(cross_attention_dim: int = 32, latent_channels: int = 4) -> dict:
    return {
        "_class_name": "UNet2DConditionModel",
        "sample_size": 8,
        "in_channels": latent_channels,
        "out_channels": latent_channels,
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": 2,
        "norm_num_groups": 8,
    }


def remove_time_conditioning(unet: torch.nn.Module) -> None:
    """What the reference does before loading weights: no timestep reaches the network."""
    from diffusers.models.resnet import ResnetBlock2D

    for module in unet.modules():
        if isinstance(module, ResnetBlock2D):
            module.time_emb_proj = None
            module.time_embedding_norm = None


def build_unet(config: dict) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_config(config)
    remove_time_conditioning(unet)
    return unet.eval()


def load_module(folder: Path) -> torch.nn.Module:
    """Load a module folder the way the release is meant to be loaded (strict: every key must match)."""
    unet = build_unet(json.loads((folder / "config.json").read_text()))
    state = torch.load(folder / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    unet.load_state_dict(state, strict=True)
    return unet


def predict_x0(unet: torch.nn.Module, x1: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    placeholder_t = torch.ones(x1.shape[0], dtype=torch.long)  # the reference passes ones; nothing reads it
    with torch.no_grad():
        return unet(x1, placeholder_t, context).sample


def write_tiny_sing_module(
    folder: Path,
    *,
    seed: int = 0,
    mean_offset: float = 1.0,
    cross_attention_dim: int = 32,
    latent_channels: int = 4,
    text_gain: float = 1.0,
) -> dict:
    """Write folder/config.json and folder/diffusion_pytorch_model.bin; return a report with measured outputs.

    text_gain scales the cross-attention outputs: a random module barely reads its text (two prompts change x̂0 by
    about 1e-4), so tests that must tell one image's prompt from another's use a module with a large gain.
    """
    torch.manual_seed(seed)
    config = module_config(cross_attention_dim, latent_channels)
    unet = build_unet(config)
    with torch.no_grad():
        unet.conv_out.reset_parameters()
        unet.conv_out.bias.fill_(mean_offset)
        for name, parameter in unet.named_parameters():
            if ".attn2.to_out.0." in name:
                parameter.mul_(text_gain)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.save(unet.state_dict(), folder / WEIGHTS_NAME)

    generator = torch.Generator().manual_seed(seed + 1)
    x1 = torch.randn(2, latent_channels, 8, 8, generator=generator)
    context = torch.randn(2, 77, cross_attention_dim, generator=generator)
    x0_hat = predict_x0(unet, x1, context)
    other_text = predict_x0(unet, x1, context.roll(1, dims=0))
    return {
        "folder": str(folder.resolve()),
        "text_sensitivity": float((x0_hat - other_text).abs().mean()),
        "x0_hat_mean": float(x0_hat.mean()),
        "x0_hat_std": float(x0_hat.std()),
        "x0_hat_mean_per_image": [float(m) for m in x0_hat.mean(dim=(1, 2, 3))],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="module folder to write (its name is the module's name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mean-offset", type=float, default=1.0, help="bias of conv_out: the x̂0 latent mean")
    parser.add_argument("--cross-attention-dim", type=int, default=32, help="text width the module expects")
    parser.add_argument("--latent-channels", type=int, default=4)
    parser.add_argument("--text-gain", type=float, default=1.0, help="scale of the cross-attention outputs")
    args = parser.parse_args(argv)
    report = write_tiny_sing_module(
        args.folder,
        seed=args.seed,
        mean_offset=args.mean_offset,
        cross_attention_dim=args.cross_attention_dim,
        latent_channels=args.latent_channels,
        text_gain=args.text_gain,
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
