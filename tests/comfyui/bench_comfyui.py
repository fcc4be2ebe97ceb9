"""Benchmark (not a test): what SingDiffusion costs inside a real ComfyUI, measured side by side in one run.

    COMFYUI_DIR=... COMFYUI_PYTHON=... python tests/comfyui/bench_comfyui.py [--rounds 10] [--checkpoint FILE]

One ComfyUI (--cpu, 127.0.0.1) with the pack, the random reduced SD-1.5 checkpoint of the live tier (built, or
--checkpoint) and a module of the same shape as its UNet (so one module forward costs about one host UNet forward
of the cond half). Each round queues, with one new seed for all four:
  idle: the node applied, sampling a non-empty latent (a VAE-encoded grey image) at denoise 0.6: it does nothing
  img:  the same without the node
  on:   the node applied, from an empty latent at full denoise
  off:  the same without the node
The order rotates every round (on a busy machine a slot's position matters). Times are ComfyUI's own
(execution_start to execution_success in /history). Printed: idle / img (goal
1.00 ± 0.03) and (on − off) / (off / steps), the module's cost in host steps; the module's first load apart.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "live"), str(HERE.parents[1])]  # helpers, the live tier, sing_core

from comfy_client import ComfyClient, Run  # noqa: E402
from comfy_live import ComfyServer  # noqa: E402
from graphs import CHECKPOINT, txt2img  # noqa: E402

from sing_core.checkpoint import save_module  # noqa: E402
from sing_core.config import UNetConfig  # noqa: E402
from sing_core.module import SingModule  # noqa: E402

# The host UNet of tiny_comfy_checkpoint.py (model_channels 320, channel_mult [1, 2], one res block, attention at
# level 0, 8 heads, context 768) in diffusers' terms, without its time embedding.
HOST_SHAPED_MODULE = {
    "in_channels": 4, "out_channels": 4, "block_out_channels": [320, 640], "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32,
}  # fmt: skip


def seconds(run: Run) -> float:
    stamps = {kind: data["timestamp"] for kind, data in run.history["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000


def image_to_image(graph: dict, size: int) -> dict:
    graph = copy.deepcopy(graph)
    graph["grey"] = {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1,
                                                            "color": 0x808080}}
    graph["latent"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["grey", 0], "vae": ["ckpt", 2]}}
    return graph


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint made by tiny_comfy_checkpoint.py")
    args = parser.parse_args(argv)
    comfy_dir = Path(os.environ["COMFYUI_DIR"])
    python = Path(os.environ.get("COMFYUI_PYTHON") or comfy_dir.parent / "venv/bin/python")

    with tempfile.TemporaryDirectory(prefix="sing-comfy-bench-") as tmp:
        base = Path(tmp)
        (base / "models/checkpoints").mkdir(parents=True)
        (base / "custom_nodes").mkdir()
        checkpoint = args.checkpoint or base / "tiny-sd15-build.safetensors"
        if args.checkpoint is None:
            subprocess.run([str(python), str(HERE / "tiny_comfy_checkpoint.py"), str(comfy_dir), str(checkpoint)],
                           cwd=comfy_dir, check=True, capture_output=True)
        (base / "models/checkpoints" / CHECKPOINT).symlink_to(checkpoint.resolve())
        torch.manual_seed(0)
        module = SingModule(UNetConfig.from_dict(HOST_SHAPED_MODULE))
        save_module(module, None, base / "models/singdiffusion/bench-sing.safetensors")
        (base / "custom_nodes/sd-webui-singdiffusion").symlink_to(HERE.parents[1], target_is_directory=True)
        server = ComfyServer(comfy_dir, python, base, Path(), base / "comfyui.log")
        try:
            server.start(300)
            client = ComfyClient(server.url)
            common = {"steps": args.steps, "size": args.size, "cfg": 7.0}
            first = client.run(txt2img(module="bench-sing", seed=0, **common))
            assert first.succeeded, first.failure
            times = {"idle": [], "img": [], "on": [], "off": []}
            for round_ in range(args.rounds + 1):
                seed = 100 + round_
                graphs = {
                    "idle": image_to_image(txt2img(module="bench-sing", seed=seed, denoise=0.6, **common), args.size),
                    "img": image_to_image(txt2img(module=None, seed=seed, denoise=0.6, **common), args.size),
                    "on": txt2img(module="bench-sing", seed=seed, **common),
                    "off": txt2img(module=None, seed=seed, **common),
                }
                order = list(graphs)[round_ % 4:] + list(graphs)[: round_ % 4]  # each graph takes each slot
                for key in order:
                    run = client.run(graphs[key])
                    assert run.succeeded, run.failure
                    if round_:  # round 0 warms every graph up
                        times[key].append(seconds(run))
            log = server.log_text()
        finally:
            server.stop()

    load = re.search(r"SingDiffusion: loaded bench-sing \[\w+\] .* in ([\d.]+)s", log)
    assert "not applied: the latent is not empty" in log  # idle really did nothing
    median = {key: statistics.median(values) for key, values in times.items()}
    paired = sorted(idle / img for idle, img in zip(times["idle"], times["img"], strict=True))
    quartiles = statistics.quantiles(paired, n=4)
    step = median["off"] / args.steps
    print(f"ComfyUI {args.size}×{args.size}, {args.steps} steps, euler, CFG 7, {args.rounds} rounds; module "
          f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f} M parameters (host-UNet-shaped)")
    for key, values in times.items():
        print(f"  {key:>4}: median {median[key] * 1000:8.1f} ms  (min {min(values) * 1000:.1f})")
    print(f"applied but idle (non-empty latent, denoise 0.6) / without the node: median of paired rounds "
          f"{statistics.median(paired):.3f} (quartiles {quartiles[0]:.3f}–{quartiles[2]:.3f}; ratio of medians "
          f"{median['idle'] / median['img']:.3f})   (goal 1.00 ± 0.03)")
    print(f"from nothing: (t_on − t_off) / (t_off / steps) = {(median['on'] - median['off']) / step:.2f} host steps")
    print(f"first use: module load {float(load.group(1)) * 1000 if load else float('nan'):.0f} ms (console), "
          f"whole first prompt {seconds(first) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
