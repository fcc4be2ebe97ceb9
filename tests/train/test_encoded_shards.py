"""`encode --shards` from image shards: x0 and the text embedding once per sample, corrupt samples skipped and
counted; `train` reads the encoded shards without running the VAE or the text encoder again."""

from __future__ import annotations

import tarfile

import torch
from safetensors.torch import load
from shard_helpers import solid_pixels, write_brightness_checkpoint, write_shards

from sing_core import load_module
from sing_core.cli import main
from sing_core.text import ClipTextEncoder
from sing_train.frozen import load_vae


def test_image_shards_encode_once_and_train(tmp_path, capsys):
    checkpoint = write_brightness_checkpoint(tmp_path / "tiny-sd1.safetensors")
    write_shards(tmp_path / "shards", shards=2, per_shard=5, size=64, corrupt=("01-002",))
    out = tmp_path / "encoded"
    assert main(["encode", str(tmp_path / "shards" / "{00000..00001}.tar"), "--checkpoint", str(checkpoint),
                 "--shards", "--out", str(out), "--resolution", "64", "--device", "cpu", "--threads", "1",
                 "--samples-per-shard", "6", "--half"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 shards" in printed
    assert "9 samples (clip_l text, 64 wide), 1 skipped as unreadable" in printed
    with tarfile.open(out / "00000.tar") as tar:
        names = tar.getnames()
        sample = load(tar.extractfile("00-001.sing.safetensors").read())
    assert names[:2] == ["00-000.sing.safetensors", "00-000.txt"]
    assert sample["x0"].dtype == torch.float16  # --half
    white = load_vae(checkpoint, "sd", torch.device("cpu")).encode(solid_pixels(230, 64)[None])[0]
    torch.testing.assert_close(sample["x0"].float(), white, atol=2e-3, rtol=1e-2)
    text = ClipTextEncoder.load(checkpoint, expected_hidden_size=None).encode(["white"])[0]
    torch.testing.assert_close(sample["cond"].float(), text, atol=2e-3, rtol=1e-2)

    assert main(["train", "--data", str(out), "--out", str(tmp_path / "run"), "--preset", "tiny", "--text-encoder",
                 str(checkpoint), "--steps", "2", "--batch-size", "3", "--data-workers", "0", "--device", "cpu",
                 "--threads", "1"]) == 0
    assert "2 shards of encoded latents" in capsys.readouterr().err
    assert load_module(tmp_path / "run" / "singdiffusion.safetensors").cross_attention_dim == 64
