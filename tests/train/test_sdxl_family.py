"""--family sdxl on a tiny random SDXL diffusers folder: SDXL's VAE (0.13025) and its own two-encoder conditioning,
as diffusers' StableDiffusionXLPipeline computes them; encoded shards; a One More Step (v) module of kind sdxl."""

from __future__ import annotations

import json
import tarfile

import pytest
import torch
from safetensors.torch import load
from tiny_sdxl import TEXT_WIDTH, write_tiny_sdxl
from train_helpers import write_image_folder

from sing_core import load_module
from sing_core.cli import main
from sing_core.kinds import ModuleKind
from sing_train.images import load_image


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    return write_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-sdxl")


def test_encode_writes_sdxl_latents_and_conditioning_as_diffusers_computes_them(tmp_path, sdxl, capsys):
    from diffusers import StableDiffusionXLPipeline

    images = tmp_path / "images"
    captions = write_image_folder(images)
    out = tmp_path / "encoded"
    assert main(["encode", str(images), "--checkpoint", str(sdxl), "--family", "sdxl", "--shards", "--out", str(out),
                 "--resolution", "64", "--device", "cpu", "--samples-per-shard", "4", "--threads", "1"]) == 0
    assert "wrote 2 shards" in capsys.readouterr().out
    with tarfile.open(out / "00000.tar") as tar:
        first = load(tar.extractfile("a_black.sing.safetensors").read())
        assert tar.extractfile("a_black.txt").read().decode() == "solid black background"
    pipe = StableDiffusionXLPipeline.from_pretrained(sdxl)
    pixels = load_image(images / "a" / "black.png", 64, 64)[None]
    with torch.no_grad():
        x0 = pipe.vae.encode(pixels).latent_dist.mean * 0.13025
        cond = pipe.encode_prompt("solid black background", device="cpu", do_classifier_free_guidance=False)[0]
    assert first["x0"].shape == (4, 8, 8)
    torch.testing.assert_close(first["x0"], x0[0])
    assert first["cond"].shape == (77, 2 * TEXT_WIDTH)
    torch.testing.assert_close(first["cond"], cond[0])
    assert captions[0] == "solid black background"


def test_an_sdxl_v_module_trains_from_images_and_from_encoded_shards(tmp_path, sdxl, capsys):
    images = tmp_path / "images"
    write_image_folder(images)
    common = ["--family", "sdxl", "--target", "v", "--preset", "tiny", "--checkpoint", str(sdxl), "--steps", "2",
              "--batch-size", "2", "--device", "cpu", "--threads", "1", "--resolution", "64"]
    assert main(["train", "--data", str(images), "--out", str(tmp_path / "from-images"), *common]) == 0
    module = load_module(tmp_path / "from-images" / "singdiffusion.safetensors")
    assert module.kind == ModuleKind("oms", "sdxl", "sdxl")
    assert module.cross_attention_dim == 2 * TEXT_WIDTH
    run = json.loads((tmp_path / "from-images" / "run.json").read_text(encoding="utf-8"))
    assert run["kind"] == ModuleKind("oms", "sdxl", "sdxl").to_metadata()
    assert run["latent_shape"] == [4, 8, 8]

    encoded = tmp_path / "encoded"
    assert main(["encode", str(images), "--checkpoint", str(sdxl), "--family", "sdxl", "--shards", "--out",
                 str(encoded), "--resolution", "64", "--device", "cpu", "--threads", "1"]) == 0
    shards = ["--data", str(encoded / "00000.tar"), "--data-workers", "0"]
    args = [a for a in common if a not in ("--resolution", "64")]
    assert main(["train", *shards, "--out", str(tmp_path / "from-shards"), *args]) == 0
    assert "1 shards of encoded latents" in capsys.readouterr().err
    assert load_module(tmp_path / "from-shards" / "singdiffusion.safetensors").kind.family == "sdxl"


def test_sd_latents_are_refused_for_the_sdxl_family(tmp_path, sdxl, capsys):
    from train_helpers import write_latents

    latents = write_latents(tmp_path / "sd.safetensors")  # scale_factor 0.18215
    assert main(["train", "--data", str(latents), "--out", str(tmp_path / "run"), "--family", "sdxl", "--preset",
                 "tiny", "--checkpoint", str(sdxl), "--steps", "1", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "scale_factor '0.18215'" in err
    assert "--family sdxl modules learn latents = VAE posterior mean × 0.13025" in err
