"""`python -m sing_core train` and `encode` end to end on tiny data: loss, files, resuming, both data formats."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from train_helpers import SMALL_UNET, TINY_CLIP, write_image_folder, write_latents, write_sd1_checkpoint

from sing_core import describe, load_module
from sing_core.cli import main
from sing_core.text import ClipTextEncoder, load_text_encoder
from sing_core.vae_file import load_vae_encoder
from sing_train.checkpoints import checkpoint_folders, read_checkpoint
from sing_train.images import load_image
from sing_train.latents import load_latents


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_sd1_checkpoint(tmp_path_factory.mktemp("models") / "tiny-sd1.safetensors")


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    return write_latents(tmp_path_factory.mktemp("data") / "latents.safetensors")


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "config.json"
    path.write_text(json.dumps(SMALL_UNET), encoding="utf-8")
    return path


def train(data, out, *extra):
    args = ["train", "--data", str(data), "--out", str(out), "--device", "cpu", "--seed", "3", "--threads", "1"]
    if "--config" not in extra and "--init" not in extra:
        args += ["--preset", "tiny"]
    return main([*args, *(str(e) for e in extra)])


def last_checkpoint(out):
    """The newest checkpoint accelerate wrote into OUT/checkpoints."""
    return read_checkpoint(checkpoint_folders(out)[-1])


def module_tensors(path):
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open is not a mapping)


def test_training_lowers_the_loss_and_writes_a_module_load_module_reads(
    tmp_path, checkpoint, latents, small_config, capsys
):
    out = tmp_path / "run"
    args = ("--config", small_config, "--text-encoder", checkpoint, "--steps", 80, "--batch-size", 8, "--lr", 1e-2)
    code = train(latents, out, *args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    last = captured.err.rstrip("\n").split("\r")[-1]  # the bar's final state
    assert last.startswith("train: 100%")
    assert "80/80" in last
    assert "<00:00" in last  # elapsed<remaining: nothing left
    assert "loss " in last
    losses = last_checkpoint(out).losses
    assert len(losses) == 80
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])

    module = load_module(out / "singdiffusion.safetensors")
    assert module.config.block_out_channels == (16, 32)
    encoder = ClipTextEncoder.load(checkpoint, expected_hidden_size=None)
    x1 = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    x0_hat = module.predict_x0(x1, encoder.encode(["pitch black", "mid grey", "bright white"]))
    assert x0_hat.shape == x1.shape
    # The optimum ignores x1 and returns E[x0 | c]: the latents' mean level is -1, 0, 1 per caption.
    means = x0_hat.mean(dim=(1, 2, 3))
    assert means[0] < means[1] < means[2]
    assert str(out / "singdiffusion.safetensors") in captured.out
    assert main(["inspect", str(out / "singdiffusion.safetensors")]) == 0
    assert "text encoder inside:    no" in capsys.readouterr().out


def test_the_tiny_preset_takes_the_text_encoders_width_and_bf16_autocast_runs(tmp_path, checkpoint, latents, capsys):
    assert train(latents, tmp_path, "--text-encoder", checkpoint, "--steps", 2, "--dtype", "bf16", "--half") == 0
    assert "bf16 forward" in capsys.readouterr().err
    module = load_module(tmp_path / "singdiffusion.safetensors")
    assert module.cross_attention_dim == TINY_CLIP.hidden_size
    assert describe(tmp_path / "singdiffusion.safetensors").dtype == "float16"  # --half


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, checkpoint, latents, small_config, capsys):
    common = ("--config", small_config, "--text-encoder", checkpoint, "--batch-size", 4, "--lr", 1e-3)
    common += ("--caption-dropout", 0.3)
    # checkpoints every 2 steps, the newest 2 kept (saving draws no random numbers: the run is the same)
    limited = ("--save-every", 2, "--checkpoints-total-limit", 2)
    assert train(latents, tmp_path / "whole", *common, "--steps", 8, *limited) == 0
    assert [p.name for p in checkpoint_folders(tmp_path / "whole")] == ["checkpoint-6", "checkpoint-8"]
    assert train(latents, tmp_path / "split", *common, "--steps", 5) == 0
    assert train(latents, tmp_path / "split", *common, "--steps", 8) == 0  # the state in --out is picked up
    assert "resumed from step 5" in capsys.readouterr().out
    whole, split = last_checkpoint(tmp_path / "whole"), last_checkpoint(tmp_path / "split")
    assert split.step == whole.step == 8
    assert split.losses == whole.losses
    # the resumed run's checkpoints (through accelerate's save_state) hold the same weights, AdamW state and all
    assert [p.name for p in checkpoint_folders(tmp_path / "split")] == ["checkpoint-5", "checkpoint-8"]
    assert all(torch.equal(v, whole.model()[k]) for k, v in split.model().items())
    a, b = (module_tensors(tmp_path / run / "singdiffusion.safetensors") for run in ("whole", "split"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # --restart ignores the state: the run starts from scratch and so differs from a continued one.
    assert train(latents, tmp_path / "split", *common, "--steps", 2, "--restart") == 0
    assert [p.name for p in checkpoint_folders(tmp_path / "split")] == ["checkpoint-2"]
    assert last_checkpoint(tmp_path / "split").losses == whole.losses[:2]


def test_image_folder_encode_then_train_matches_training_from_the_folder(tmp_path, checkpoint, small_config, capsys):
    images = tmp_path / "images"
    captions = write_image_folder(images)
    encoded = tmp_path / "latents.safetensors"
    assert main(["encode", str(images), "--checkpoint", str(checkpoint), "--out", str(encoded),
                 "--resolution", "64", "--device", "cpu", "--batch-size", "4", "--threads", "1"]) == 0  # fmt: skip
    assert "6 latents of 4x8x8" in capsys.readouterr().out
    dataset = load_latents(encoded)
    assert dataset.captions == captions
    assert dataset.sources[:2] == ["a/black.png", "a/white.png"]
    assert dataset.info["scale_factor"] == "0.18215"
    vae = load_vae_encoder(checkpoint)
    pixels = torch.stack([load_image(images / s, 64, 64) for s in dataset.sources])
    assert pixels[0].max() == -1  # black
    assert pixels[1].min() == 1  # white
    torch.testing.assert_close(dataset.latents, vae.encode(pixels), rtol=0, atol=1e-5)  # diffusers vs LDM encoder

    common = ("--config", small_config, "--steps", 3, "--batch-size", 4, "--bundle-text-encoder")
    assert train(images, tmp_path / "from-images", "--checkpoint", checkpoint, "--resolution", 64, *common) == 0
    assert train(encoded, tmp_path / "from-latents", "--text-encoder", checkpoint, *common) == 0
    a, b = (module_tensors(tmp_path / run / "singdiffusion.safetensors") for run in ("from-images", "from-latents"))
    assert all(torch.equal(a[k], b[k]) for k in a)

    path = tmp_path / "from-images" / "singdiffusion.safetensors"
    assert describe(path).has_text_encoder
    bundled = load_text_encoder(path, expected_hidden_size=None)
    original = load_text_encoder(checkpoint, expected_hidden_size=None)
    ids = torch.randint(0, 49408, (2, 77), generator=torch.Generator().manual_seed(0))
    assert torch.equal(bundled(ids), original(ids))


def test_fine_tuning_an_existing_module_starts_from_its_weights(tmp_path, checkpoint, latents, small_config):
    assert train(latents, tmp_path / "first", "--config", small_config, "--text-encoder", checkpoint, "--steps", 2) == 0
    first = tmp_path / "first" / "singdiffusion.safetensors"
    tiny_step = ("--lr", 1e-12, "--steps", 1)
    assert train(latents, tmp_path / "second", "--init", first, "--text-encoder", checkpoint, *tiny_step) == 0
    before, after = module_tensors(first), module_tensors(tmp_path / "second" / "singdiffusion.safetensors")
    assert all(torch.allclose(before[k], after[k], atol=1e-9) for k in before)


def test_an_fp16_run_with_ema_resumes_bit_identically(tmp_path, checkpoint, latents, small_config):
    """The EMA and the fp16 loss scale travel in accelerate's checkpoint as registered objects."""
    common = ("--config", small_config, "--text-encoder", checkpoint, "--batch-size", 4, "--lr", 1e-3)
    common += ("--dtype", "fp16", "--ema-decay", 0.5)
    assert train(latents, tmp_path / "whole", *common, "--steps", 6) == 0
    assert train(latents, tmp_path / "split", *common, "--steps", 3) == 0
    assert train(latents, tmp_path / "split", *common, "--steps", 6) == 0
    assert last_checkpoint(tmp_path / "split").losses == last_checkpoint(tmp_path / "whole").losses
    for name in ("singdiffusion", "singdiffusion-raw"):  # the EMA module and the raw weights
        a, b = (module_tensors(tmp_path / run / f"{name}.safetensors") for run in ("whole", "split"))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    scaler = torch.load(checkpoint_folders(tmp_path / "split")[-1] / "custom_checkpoint_2.pkl", weights_only=True)
    assert scaler["scale"] > 0  # position, EMA, then the loss scaler
