"""Our LDM-layout VAE encoder against diffusers' AutoencoderKL, its weights converted by diffusers' own LDM→diffusers
converter (so the key layout is checked by code we did not write)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from sing_core.vae import SD_SCALE_FACTOR, VaeEncoder, VaeEncoderConfig
from sing_core.vae_file import load_vae_encoder

TINY = VaeEncoderConfig(ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=2, z_channels=4)


def random_ldm_vae(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random encoder's state dict in LDM's layout; norms moved off (1, 0) so a skipped or swapped norm shows."""
    torch.manual_seed(seed)
    vae = VaeEncoder(TINY)
    with torch.no_grad():
        for name, parameter in vae.named_parameters():
            if "norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return {f"first_stage_model.{k}": v.contiguous() for k, v in vae.state_dict().items()}


def diffusers_vae(ldm_state: dict[str, torch.Tensor]):
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    levels = len(TINY.ch_mult)
    model = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(TINY.ch * m for m in TINY.ch_mult),
        layers_per_block=TINY.num_res_blocks,
        latent_channels=TINY.z_channels,
        norm_num_groups=32,
    ).eval()
    converted = convert_ldm_vae_checkpoint(dict(ldm_state), {"down_block_types": [0] * levels, "up_block_types": []})
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert not unexpected
    # Everything the encoder path uses came from our file; only the decoder side keeps its random init.
    assert missing
    assert all(k.startswith(("decoder.", "post_quant_conv.")) for k in missing)
    return model


@pytest.mark.parametrize(("height", "width"), [(64, 64), (48, 80)])
def test_encoder_matches_diffusers_autoencoder_kl(tmp_path, height, width):
    state = random_ldm_vae()
    path = tmp_path / "sd.safetensors"
    save_file({**state, "model.diffusion_model.out.2.bias": torch.zeros(4)}, str(path))
    ours = load_vae_encoder(path)
    assert ours.config == TINY
    reference = diffusers_vae(state)
    images = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        posterior = reference.encode(images).latent_dist
        mean, logvar = ours(images)
    torch.testing.assert_close(mean, posterior.mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(logvar, posterior.logvar, rtol=0, atol=1e-5)
    assert mean.shape == (2, 4, height // 8, width // 8)
    torch.testing.assert_close(ours.encode(images), posterior.mean * SD_SCALE_FACTOR, rtol=0, atol=1e-5)


def test_standalone_vae_file_with_linear_attention_weights_loads_the_same(tmp_path):
    """A models/VAE file (no prefix) whose mid attention q/k/v/proj_out are stored as [C, C] linear weights."""
    state = {k.removeprefix("first_stage_model."): v for k, v in random_ldm_vae(seed=2).items()}
    flat = {
        k: (v[:, :, 0, 0] if ".mid.attn_1." in k and k.endswith("weight") and v.ndim == 4 else v)
        for k, v in state.items()
    }
    assert any(v.ndim == 2 for v in flat.values())
    save_file(state, str(tmp_path / "conv.safetensors"))
    save_file(flat, str(tmp_path / "flat.safetensors"))
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    conv, linear = load_vae_encoder(tmp_path / "conv.safetensors"), load_vae_encoder(tmp_path / "flat.safetensors")
    assert torch.equal(conv.encode(images), linear.encode(images))
