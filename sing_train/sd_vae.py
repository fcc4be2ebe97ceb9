"""SD-1.x/2.x's VAE out of a single-file checkpoint, as diffusers' AutoencoderKL, offline.

diffusers' own from_single_file fetches the model's config from the Hub; this builds AutoencoderKL from SD's VAE config
written here instead, its shape (widths, blocks, latent channels) read from the file's tensors, so any LDM-layout VAE
loads, SD's and the tiny test one alike. The weights are converted from LDM's layout (first_stage_model.encoder.*,
quant_conv.*; or a standalone VAE file without the prefix) by diffusers' own convert_ldm_vae_checkpoint. Only the
encoder and quant_conv are read and kept: a trainer encodes and never decodes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sing_core.kinds import SD, VAE_SCALING_FACTORS

# SD-1.x/2.x's VAE (stabilityai/sd-vae-ft-mse's config.json, the AutoencoderKL of every SD-1.5/2.x diffusers folder)
SD_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": VAE_SCALING_FACTORS[SD],
}
LDM_PREFIXES = ("first_stage_model.", "")  # a full checkpoint, a standalone VAE (models/VAE/*.safetensors)
KEPT = ("encoder.", "quant_conv.")
MARKER = "encoder.conv_in.weight"
SD_LATENT_CHANNELS = 4
WHAT_TO_PASS = (
    "pass an SD-1.x or SD-2.x checkpoint (e.g. v1-5-pruned-emaonly.safetensors), a standalone SD VAE in the LDM/A1111 "
    "layout (e.g. vae-ft-mse-840000-ema-pruned.safetensors), or a diffusers folder"
)


class SdVaeError(ValueError):
    """The file holds no usable SD-1.x/2.x VAE encoder; the message says what it holds and what to pass instead."""


def _prefix(keys: list[str], path: Path) -> str:
    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise SdVaeError(
            f"{path}: an SDXL checkpoint, whose VAE encodes SDXL's latent space (0.13025); --family sd needs "
            f"SD-1.x/2.x's: {WHAT_TO_PASS}, or train with --family sdxl"
        )
    for prefix in LDM_PREFIXES:
        if prefix + MARKER in keys:
            return prefix
    if any("encoder.down_blocks." in k for k in keys):
        raise SdVaeError(
            f"{path}: a VAE in diffusers' layout (encoder.down_blocks.*), not LDM's; pass the diffusers folder it "
            f"belongs to (with its config.json), or {WHAT_TO_PASS}"
        )
    raise SdVaeError(
        f"{path}: no VAE in it (no key {LDM_PREFIXES[0]}{MARKER} or {MARKER}); it may be a UNet-only or pruned "
        f"file; {WHAT_TO_PASS}"
    )


def _config(ldm: dict[str, torch.Tensor]) -> dict:
    """SD's VAE config with the shape of the encoder whose LDM tensors these are (keys without the prefix)."""
    levels = sorted({int(k.split(".")[2]) for k in ldm if k.startswith("encoder.down.")})
    blocks = {int(k.split(".")[4]) for k in ldm if k.startswith("encoder.down.0.block.")}
    widths = [ldm[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in levels]
    return {
        **SD_VAE_CONFIG,
        "in_channels": ldm["encoder.conv_in.weight"].shape[1],
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "block_out_channels": widths,
        "layers_per_block": max(blocks) + 1,
        "latent_channels": ldm["encoder.conv_out.weight"].shape[0] // 2,
    }


def load_sd_vae(path: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """diffusers' AutoencoderKL holding the file's VAE encoder (the decoder left out), frozen, in eval mode."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors import SafetensorError, safe_open

    if path.suffix != ".safetensors":
        raise SdVaeError(f"{path}: not a .safetensors file; {WHAT_TO_PASS}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            prefix = _prefix(keys, path)
            ldm = {
                k.removeprefix(prefix): handle.get_tensor(k)
                for k in keys
                if k.startswith(prefix) and k.removeprefix(prefix).startswith(KEPT)
            }
    except SafetensorError as error:
        raise SdVaeError(f"{path}: not a readable .safetensors file ({error}); {WHAT_TO_PASS}") from error
    config = _config(ldm)
    if config["latent_channels"] != SD_LATENT_CHANNELS:
        raise SdVaeError(
            f"{path}: a VAE with {config['latent_channels']} latent channels (SD3/Flux-style?); --family sd modules "
            f"work in SD-1.x/2.x's {SD_LATENT_CHANNELS}-channel latent space: {WHAT_TO_PASS}"
        )
    converted = convert_ldm_vae_checkpoint(ldm, config)
    vae = AutoencoderKL(**config)
    # a trainer only encodes: the decoder goes (saves its memory on the GPU); what the file holds must fill the rest
    vae.decoder, vae.post_quant_conv = None, None
    expected = set(vae.state_dict())
    missing, unexpected = sorted(expected - set(converted)), sorted(set(converted) - expected)
    if missing or unexpected:
        raise SdVaeError(
            f"{path}: its VAE encoder does not fit SD's AutoencoderKL (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); {WHAT_TO_PASS}"
        )
    vae.load_state_dict(converted)
    vae = vae.to(device) if dtype == torch.float32 else vae.to(device, dtype)  # (diffusers warns on any dtype given)
    return vae.eval().requires_grad_(False)
