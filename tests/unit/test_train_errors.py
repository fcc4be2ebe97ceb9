"""Bad input to `train` and `encode`: exit status 1 and a message that names the file, the cause and the fix."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from train_helpers import TINY_VAE, write_image_folder, write_latents, write_sd1_checkpoint

from sing_core.cli import main
from sing_core.vae import VaeEncoderConfig
from sing_train.checkpoints import checkpoint_folders, read_checkpoint
from sing_train.latents import load_latents


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_sd1_checkpoint(tmp_path_factory.mktemp("models") / "tiny-sd1.safetensors")


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    return write_latents(tmp_path_factory.mktemp("data") / "latents.safetensors", count=6)


def fails(capsys, *args) -> str:
    """Runs the command, asserts exit status 1 and returns its stderr."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 1, err
    return err


def encode(capsys, images, checkpoint, out, *extra):
    return fails(capsys, "encode", images, "--checkpoint", checkpoint, "--out", out, "--resolution", 64,
                 "--device", "cpu", *extra)  # fmt: skip


def train(capsys, data, out, *extra):
    return fails(capsys, "train", "--data", data, "--out", out, "--device", "cpu", "--steps", 1, *extra)


def test_image_folder_problems(tmp_path, checkpoint, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    err = encode(capsys, empty, checkpoint, tmp_path / "a.safetensors")
    assert "no images found" in err
    assert str(empty) in err

    images = tmp_path / "images"
    write_image_folder(images)
    (images / "grey.txt").unlink()
    err = encode(capsys, images, checkpoint, tmp_path / "a.safetensors")
    assert "1 of 6 images have no caption file; missing" in err
    assert str(images / "grey.txt") in err

    (images / "grey.txt").write_text("grey")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (images / "broken.txt").write_text("broken")
    err = encode(capsys, images, checkpoint, tmp_path / "a.safetensors")
    assert str(images / "broken.png") in err
    assert "cannot read the image" in err
    assert not (tmp_path / "a.safetensors").exists()


def test_checkpoints_without_a_usable_vae(tmp_path, capsys):
    images = tmp_path / "images"
    write_image_folder(images)
    out = tmp_path / "latents.safetensors"
    no_vae = write_sd1_checkpoint(tmp_path / "unet-only.safetensors", vae=False)
    err = encode(capsys, images, no_vae, out)
    assert "no VAE in it" in err
    assert str(no_vae) in err

    sdxl = write_sd1_checkpoint(tmp_path / "sdxl.safetensors", sdxl=True)
    err = encode(capsys, images, sdxl, out)
    assert "SDXL" in err
    assert "0.13025" in err

    wide = VaeEncoderConfig(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1, z_channels=16)
    err = encode(capsys, images, write_sd1_checkpoint(tmp_path / "sd3.safetensors", vae_config=wide), out)
    assert "16 latent channels" in err

    diffusers_layout = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({"encoder.down_blocks.0.resnets.0.conv1.weight": torch.zeros(32, 32, 3, 3)}, str(diffusers_layout))
    assert "diffusers' layout" in encode(capsys, images, diffusers_layout, out)
    assert not out.exists()

    err = train(capsys, images, tmp_path / "run", "--preset", "tiny", "--text-encoder", no_vae)
    assert "is an image folder: pass --checkpoint" in err


def test_bad_latents_files(tmp_path, checkpoint, capsys):
    common = ("--preset", "tiny", "--text-encoder", checkpoint)
    wide = write_latents(tmp_path / "eight.safetensors", count=6, channels=8)
    err = train(capsys, wide, tmp_path / "run", *common)
    assert "latents with 8 channels" in err
    assert str(wide) in err

    unscaled = write_latents(tmp_path / "unscaled.safetensors", count=6, scale=None)
    err = train(capsys, unscaled, tmp_path / "run", *common)
    assert "scale_factor None" in err
    assert "0.18215" in err

    err = train(capsys, checkpoint, tmp_path / "run", *common)
    assert "not a latents file" in err
    assert "sing_core encode" in err

    assert "no such file" in train(capsys, tmp_path / "missing.safetensors", tmp_path / "run", *common)
    fine = write_latents(tmp_path / "fine.safetensors", count=6)
    err = train(capsys, fine, tmp_path / "run", *common, "--resolution", 64)
    assert "--resolution applies to image folders and shards" in err


def test_text_encoder_problems(tmp_path, checkpoint, latents, capsys):
    err = train(capsys, latents, tmp_path / "run", "--preset", "tiny")
    assert "no text encoder" in err

    # SD-1.5's shape needs CLIP-L's 768-wide text; the tiny checkpoint's encoder is 64 wide.
    err = train(capsys, latents, tmp_path / "run", "--preset", "sd15", "--checkpoint", checkpoint)
    assert "64 wide" in err
    assert "expected 768" in err
    assert "--text-encoder defaults to --checkpoint" in err

    text_less = write_sd1_checkpoint(tmp_path / "vae-only.safetensors", text=False)
    err = train(capsys, latents, tmp_path / "run", "--preset", "tiny", "--text-encoder", text_less)
    assert "no CLIP text encoder in it" in err


def test_resume_problems(tmp_path, checkpoint, latents, capsys):
    common = ("--text-encoder", checkpoint, "--threads", 1)
    assert main(["train", "--data", str(latents), "--out", str(tmp_path / "run"), "--device", "cpu", "--steps", "2",
                 "--preset", "tiny", *map(str, common)]) == 0  # fmt: skip
    capsys.readouterr()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads((tmp_path / "run" / "run.json").read_text())["unet_config"],
                                  "layers_per_block": 2}))  # fmt: skip
    err = train(capsys, latents, tmp_path / "run", "--config", config, *common, "--steps", 3)
    assert "holds a run of another network" in err
    assert "--restart" in err

    err = train(capsys, latents, tmp_path / "run", "--preset", "tiny", *common)
    assert "at step 2, past --steps 1" in err

    module = tmp_path / "run" / "singdiffusion.safetensors"
    err = train(capsys, latents, tmp_path / "other", "--preset", "tiny", *common, "--resume", module)
    assert "not a training checkpoint" in err
    assert "--init" in err


def test_argument_problems(tmp_path, checkpoint, latents, capsys, monkeypatch):
    common = ("--preset", "tiny", "--text-encoder", checkpoint)
    assert "multiples of 8" in train(capsys, latents, tmp_path / "run", *common, "--resolution", "500")
    assert "--caption-dropout 1.5" in train(capsys, latents, tmp_path / "run", *common, "--caption-dropout", 1.5)
    assert "--batch-size 0" in train(capsys, latents, tmp_path / "run", *common, "--batch-size", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = fails(capsys, "train", "--data", latents, "--out", tmp_path / "run", "--device", "cuda", *common)
    assert "--device cuda" in err
    assert "--device cpu" in err
    with pytest.raises(SystemExit):  # argparse: exactly one network
        main(["train", "--data", str(latents), "--out", str(tmp_path), "--preset", "tiny", "--config", "c.json"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_encode_refuses_to_overwrite(tmp_path, checkpoint, capsys):
    images = tmp_path / "images"
    captions = write_image_folder(images)
    out = tmp_path / "latents.safetensors"
    out.write_bytes(b"keep me")
    assert "already exists; pass --force" in encode(capsys, images, checkpoint, out)
    assert out.read_bytes() == b"keep me"
    # --force replaces it with the latents: one per image, 64 px at the VAE's 8× downsampling
    code = main(["encode", str(images), "--checkpoint", str(checkpoint), "--out", str(out), "--resolution", "64",
                 "--device", "cpu", "--force"])
    assert code == 0, capsys.readouterr().err
    dataset = load_latents(out)
    assert dataset.latents.shape == (6, 4, 64 // TINY_VAE.downsampling, 64 // TINY_VAE.downsampling)
    assert sorted(dataset.captions) == sorted(captions)


def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(tmp_path, checkpoint, latents, capsys):
    out = tmp_path / "run"
    err = train(capsys, latents, out, "--preset", "tiny", "--text-encoder", checkpoint, "--threads", 1, "--lr", 1e30,
                "--steps", 6, "--save-every", 1, "--progress-every", 1)  # fmt: skip
    assert "the loss became" in err
    assert "lower --lr" in err
    state = read_checkpoint(checkpoint_folders(out)[-1])
    assert 1 <= state.step < 6
    assert all(torch.isfinite(v).all() for v in state.model().values())
    assert all(torch.isfinite(torch.tensor(state.losses)))
