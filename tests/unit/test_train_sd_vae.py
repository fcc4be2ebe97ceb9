"""The trainer's SD-1.x/2.x VAE: diffusers' AutoencoderKL built offline from a single-file checkpoint
(sing_train.sd_vae) encodes as the engine's own LDM encoder (sing_core.vae, the reference) does."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from train_helpers import TINY_VAE, write_sd1_checkpoint

from sing_core.vae_file import load_vae_encoder
from sing_train.frozen import load_vae
from sing_train.sd_vae import SdVaeError, load_sd_vae


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_sd1_checkpoint(tmp_path_factory.mktemp("models") / "tiny-sd1.safetensors")


def pixels(count=3, height=64, width=48):
    return torch.rand(count, 3, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_autoencoderkl_encodes_as_the_ldm_encoder_did(checkpoint):
    reference = load_vae_encoder(checkpoint)
    vae = load_vae(checkpoint, "sd", torch.device("cpu"))
    x = pixels()
    latents = vae.encode(x)
    assert latents.shape == (3, 4, 64 // TINY_VAE.downsampling, 48 // TINY_VAE.downsampling)
    assert vae.scale_factor == pytest.approx(0.18215)
    assert vae.downsampling == TINY_VAE.downsampling
    torch.testing.assert_close(latents, reference.encode(x), rtol=0, atol=1e-5)
    assert latents.abs().max() > 1e-3  # random weights give latents of some size: the comparison is not of zeros


def test_a_standalone_ldm_vae_file_loads_and_the_decoder_is_left_out(checkpoint, tmp_path):
    prefix = "first_stage_model."
    standalone = tmp_path / "vae.safetensors"  # models/VAE/*.safetensors: the same tensors without the prefix
    save_file({k.removeprefix(prefix): v for k, v in load_file(str(checkpoint)).items() if k.startswith(prefix)},
              str(standalone))  # fmt: skip
    vae = load_sd_vae(standalone)
    assert vae.decoder is None
    assert not any(p.requires_grad for p in vae.parameters())
    x = pixels(1)
    torch.testing.assert_close(vae.encode(x).latent_dist.mean * 0.18215, load_vae_encoder(checkpoint).encode(x),
                               rtol=0, atol=1e-5)  # fmt: skip


def test_files_without_an_sd_vae_are_refused(tmp_path):
    with pytest.raises(SdVaeError, match="no VAE in it"):
        load_sd_vae(write_sd1_checkpoint(tmp_path / "unet-only.safetensors", vae=False))
    with pytest.raises(SdVaeError, match="SDXL checkpoint"):
        load_sd_vae(write_sd1_checkpoint(tmp_path / "sdxl.safetensors", sdxl=True))
