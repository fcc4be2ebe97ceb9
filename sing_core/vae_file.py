"""Read the VAE encoder out of the files users have: a full SD-1.x/2.x checkpoint (first_stage_model.*) or a
standalone LDM-layout VAE (models/VAE/*.safetensors: encoder.*, quant_conv.*, decoder.*). Only the encoder's and
quant_conv's tensors are read; the decoder, the UNet and the text encoder stay on disk.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sing_core.text.tensor_files import TensorFile, WeightsFileError
from sing_core.vae import SD_SCALE_FACTOR, VaeEncoder, VaeEncoderConfig

CHECKPOINT_PREFIX = "first_stage_model."
PARTS = ("encoder.", "quant_conv.")
MARKER = "encoder.conv_in.weight"
SD_LATENT_CHANNELS = 4
WHAT_TO_PASS = (
    "pass an SD-1.x or SD-2.x checkpoint (e.g. v1-5-pruned-emaonly.safetensors) or a standalone SD VAE in the "
    "LDM/A1111 layout (e.g. vae-ft-mse-840000-ema-pruned.safetensors)"
)


class VaeLoadError(WeightsFileError):
    """The file holds no usable SD-1.x/2.x VAE encoder; the message says what it holds and what to pass instead."""


def _prefix(keys: list[str], path: Path) -> str:
    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise VaeLoadError(
            f"{path}: an SDXL checkpoint. Its VAE has the SD layout but encodes another latent space (scale factor "
            f"0.13025 instead of {SD_SCALE_FACTOR}); the SingDiffusion module works in SD-1.x/2.x's latent space, "
            f"so its training data must too: {WHAT_TO_PASS}"
        )
    for prefix in (CHECKPOINT_PREFIX, ""):
        if prefix + MARKER in keys:
            return prefix
    if any("encoder.down_blocks." in k for k in keys):
        raise VaeLoadError(f"{path}: a VAE in diffusers' layout (encoder.down_blocks.*), not LDM's; {WHAT_TO_PASS}")
    raise VaeLoadError(
        f"{path}: no VAE in it (no key {CHECKPOINT_PREFIX}{MARKER} or {MARKER}); it may be a UNet-only or pruned "
        f"file; {WHAT_TO_PASS}"
    )


def _check(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], path: Path) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        f"{k} {list(found[k])} vs {list(expected[k])}" for k in set(expected) & set(found) if found[k] != expected[k]
    )
    problems = [
        f"{label}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong))
        if keys
    ]
    if problems:
        raise VaeLoadError(f"{path}: the VAE encoder's tensors do not fit LDM's Encoder: {'; '.join(problems)}")


def load_vae_encoder(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> VaeEncoder:
    """The VAE encoder of `path` in eval mode without gradients, on `device` in `dtype`, with SD's scale factor."""
    path = Path(path)
    file = TensorFile(path)
    keys = file.keys()
    prefix = _prefix(keys, path)
    names = {k[len(prefix) :]: k for k in keys if k.startswith(prefix) and k[len(prefix) :].startswith(PARTS)}
    shapes = {name: file.shape(key) for name, key in names.items()}
    # Some converted files store the mid attention's 1×1 convolutions as [C, C] linear weights.
    flat = {n for n, s in shapes.items() if ".mid.attn_1." in n and n.endswith(".weight") and len(s) == 2}
    shapes |= {n: (*shapes[n], 1, 1) for n in flat}
    try:
        config = VaeEncoderConfig.from_shapes(shapes)
    except (KeyError, IndexError, ValueError) as error:
        raise VaeLoadError(f"{path}: incomplete VAE encoder ({error} missing or malformed); {WHAT_TO_PASS}") from error
    if config.z_channels != SD_LATENT_CHANNELS:
        raise VaeLoadError(
            f"{path}: a VAE with {config.z_channels} latent channels (SD3/Flux-style?); the SingDiffusion module "
            f"works in SD-1.x/2.x's {SD_LATENT_CHANNELS}-channel latent space: {WHAT_TO_PASS}"
        )
    with torch.device("meta"):
        vae = VaeEncoder(config)
    _check({k: tuple(v.shape) for k, v in vae.state_dict().items()}, shapes, path)
    state = {}
    for name, key in names.items():
        tensor = file.tensor(key)
        tensor = tensor[:, :, None, None] if name in flat else tensor
        if not torch.isfinite(tensor.float()).all():
            raise VaeLoadError(f"{path}: NaN or inf values in {key}; the file is damaged")
        state[name] = tensor.to(device=device, dtype=dtype)
    vae.load_state_dict(state, strict=True, assign=True)
    return vae.eval().requires_grad_(False)
