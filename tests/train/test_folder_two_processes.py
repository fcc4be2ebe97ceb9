"""An image folder under `accelerate launch --multi_gpu --num_processes 2` on the CPU: each process encodes and trains
on its own share of the folder, and the two shares are disjoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_two_processes import ROOT, free_port
from train_helpers import SMALL_UNET, write_image_folder, write_sd1_checkpoint

from sing_train.images import find_image_captions


def test_each_process_encodes_and_trains_on_its_own_share(tmp_path):
    images = tmp_path / "images"
    write_image_folder(images)
    write_sd1_checkpoint(tmp_path / "tiny-sd1.safetensors")
    (tmp_path / "unet.json").write_text(json.dumps(SMALL_UNET), encoding="utf-8")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        "-m", "sing_core", "train", "--data", str(images), "--checkpoint", str(tmp_path / "tiny-sd1.safetensors"),
        "--config", str(tmp_path / "unet.json"), "--resolution", "64", "--out", str(tmp_path / "run"),
        "--steps", "3", "--batch-size", "2", "--record-keys", "--threads", "1", "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 latents 4x8x8 (this process's share of 6 images)" in done.stderr
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert (run["world_size"], run["samples"], run["step"]) == (2, 6, 3)
    sources = [pair.image.relative_to(images).as_posix() for pair in find_image_captions(images)]
    keys = json.loads((tmp_path / "run" / "keys.json").read_text(encoding="utf-8"))
    assert [len(rows) for rows in keys] == [6, 6]  # 3 steps of 2 each
    for rank, rows in enumerate(keys):  # every image a process trained on is one of its own share
        assert set(rows) == set(sources[rank::2])  # 3 images, each seen twice in 2 epochs of its share
    assert not set(keys[0]) & set(keys[1])
