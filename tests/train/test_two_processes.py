"""Two processes through `accelerate launch --multi_gpu --num_processes 2` on the CPU (gloo): tiny shards of dark
images captioned "black" and bright ones captioned "white", the tiny SD-1 checkpoint. The processes see disjoint
samples, a corrupt member is skipped and counted, a rerun continues from the checkpoint, the EMA module and the raw one
are written with run.json, and the module learns the difference."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from shard_helpers import SAMPLES_PER_SHARD, solid_pixels, write_brightness_checkpoint, write_shards
from train_helpers import SMALL_UNET

from sing_core import load_module
from sing_core.kinds import ModuleKind
from sing_core.text import ClipTextEncoder
from sing_train.frozen import load_vae

ROOT = Path(__file__).resolve().parents[2]
SHARDS, BATCH, FIRST_STEPS, STEPS = 4, 4, 5, 60
CORRUPT = tuple(f"{shard:02d}-000" for shard in range(SHARDS))  # the first member of every shard is no image


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(tmp_path: Path, steps: int) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        "-m", "sing_core", "train", "--data", str(tmp_path / "shards" / f"{{00000..{SHARDS - 1:05d}}}.tar"),
        "--checkpoint", str(tmp_path / "tiny-sd1.safetensors"), "--config", str(tmp_path / "unet.json"),
        "--resolution", "64", "--out", str(tmp_path / "run"), "--steps", str(steps), "--batch-size", str(BATCH),
        "--lr", "3e-3", "--ema-decay", "0.9", "--save-every", "5", "--progress-every", "5", "--data-workers", "1",
        "--record-keys", "--threads", "1", "--seed", "1",
    ]
    # No GPU, whatever the machine has: the trainer must then choose the CPU and gloo itself.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("two")
    write_brightness_checkpoint(tmp_path / "tiny-sd1.safetensors")
    write_shards(tmp_path / "shards", shards=SHARDS, per_shard=SAMPLES_PER_SHARD, size=64, corrupt=CORRUPT)
    (tmp_path / "unet.json").write_text(json.dumps(SMALL_UNET), encoding="utf-8")
    first = launch(tmp_path, FIRST_STEPS)
    assert first.returncode == 0, first.stderr[-3000:]
    first_run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    first_keys = json.loads((tmp_path / "run" / "keys.json").read_text(encoding="utf-8"))
    second = launch(tmp_path, STEPS)  # the same command, more steps: continues from the checkpoint
    assert second.returncode == 0, second.stderr[-3000:]
    return tmp_path, first, first_run, first_keys, second


def test_the_processes_see_disjoint_samples_and_skip_the_corrupt_ones(runs):
    _, _, first_run, first_keys, _ = runs
    assert first_run["world_size"] == 2
    assert first_run["global_batch_size"] == 2 * BATCH
    assert first_run["step"] == FIRST_STEPS
    assert first_run["resumed_from"] == 0
    assert len(first_keys) == 2
    assert [len(keys) for keys in first_keys] == [FIRST_STEPS * BATCH] * 2  # less than an epoch per process
    assert all(len(set(keys)) == len(keys) for keys in first_keys)
    assert set(first_keys[0]).isdisjoint(first_keys[1])
    assert not set(CORRUPT) & {k for keys in first_keys for k in keys}
    assert first_run["skipped_samples"] >= 2  # each process's first shard begins with a corrupt member


def test_a_rerun_continues_from_the_checkpoint_and_writes_the_ema_module(runs):
    tmp_path, _, _, _, second = runs
    assert f"resuming from step {FIRST_STEPS}" in second.stderr
    assert "samples/s per process" in second.stdout
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert (run["step"], run["resumed_from"], run["world_size"], run["ema_decay"]) == (STEPS, FIRST_STEPS, 2, 0.9)
    assert run["samples_per_s"] == pytest.approx(2 * run["samples_per_s_per_process"])
    assert run["loss_last"] < 0.5 * run["loss_first"]
    ema, raw = load_module(tmp_path / "run" / "singdiffusion.safetensors"), load_module(
        tmp_path / "run" / "singdiffusion-raw.safetensors")
    assert ema.kind == raw.kind == ModuleKind("singdiffusion", "sd", "clip_l")
    assert any(not torch.equal(a, b) for a, b in zip(ema.unet.state_dict().values(), raw.unet.state_dict().values(),
                                                     strict=True))


def brightness(tmp_path: Path, module_path: Path) -> tuple[float, float, float, float]:
    """(separation, the module's mean x̂0 for "black" and for "white", the data's latent mean gap white − black).

    separation: the module's x̂0("white") − x̂0("black") projected on the VAE's own latent gap between a white and a
    black image: 1 when the module tells them apart as the data does, 0 when it ignores the caption."""
    checkpoint = tmp_path / "tiny-sd1.safetensors"
    vae = load_vae(checkpoint, "sd", torch.device("cpu"))
    data_black, data_white = (vae.encode(solid_pixels(level, 64)[None])[0] for level in (25, 230))
    gap = data_white - data_black
    module = load_module(module_path)
    encoder = ClipTextEncoder.load(checkpoint, expected_hidden_size=None)
    x1 = torch.randn(16, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        black = module.predict_x0(x1, encoder.encode(["black"] * 16)).mean(0)
        white = module.predict_x0(x1, encoder.encode(["white"] * 16)).mean(0)
    separation = float(((white - black) * gap).sum() / (gap * gap).sum())
    return separation, float(black.mean()), float(white.mean()), float(gap.mean())


def test_the_module_learns_white_from_black(runs):
    tmp_path = runs[0]
    for name, least in (("singdiffusion", 0.2), ("singdiffusion-raw", 0.4)):
        separation, black, white, data_gap = brightness(tmp_path, tmp_path / "run" / f"{name}.safetensors")
        print(f"{name}: separation {separation:.3f}, mean x̂0 black {black:.4f} white {white:.4f}")
        assert separation > least
        # In this VAE's latents a white image's mean lies above a black one's; the module's x̂0 ranks them so too.
        assert data_gap > 0
        assert white > black
