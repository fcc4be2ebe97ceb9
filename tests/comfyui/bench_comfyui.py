"""Benchmark (not a test): what SingDiffusion costs inside a real ComfyUI, measured side by side in one run.

    COMFYUI_DIR=... COMFYUI_PYTHON=... python tests/comfyui/bench_comfyui.py [--family sd15|sdxl] [--rounds 16]
        [--size 128] [--steps 8] [--checkpoint FILE] [--node-times] [--log FILE]

One ComfyUI (--cpu, 127.0.0.1) with the pack, a random reduced checkpoint of the live tier (built, or --checkpoint)
and a random module the size of its UNet, so that one module forward costs about one host UNet forward; the module
runs cond and uncond in one batched forward as the host does its own, so its physical limit is about 1 host step:
  --family sd15: the SD-1.5 checkpoint and a SingDiffusion module of exactly its UNet's shape (guided by the
      sampler's CFG 7 against the negative prompt)
  --family sdxl: the SDXL checkpoint and a One More Step module in its release layout (model_index.json +
      oms_module/ + oms_text_encoder/) reading SDXL's own 2048-wide conditioning, 320 wide throughout as the host
      UNet, with the host's attention depths at each level (7 in the mid block, which the host has without
      attention) for about the same parameters and work; guidance_scale 2 against "" encoded by the Apply node's
      clip input (the checkpoint's SDXL CLIP)
Two comparisons, each in paired rounds of its own, one new seed per round for the graphs of it:
  idle vs img: the node applied to image to image (a VAE-encoded grey image at denoise 0.6), where it does nothing,
      against the same graph without the node; the two alternate (idle img, img idle, ...), so each follows the
      other as often as itself
  on vs off, off2: the node applied from an empty latent at full denoise, the same without it, and without it at
      twice the steps (off2 − off is the price of the extra host steps); the three rotate through the slots
The comparisons do not share rounds because ComfyUI keeps only the outputs of the nodes of the prompt it is running
(its default RAM-pressure cache drops the outputs of older prompts after every node): an image-to-image graph run
after a txt2img graph encodes its image again (VAEEncode, 18% of the prompt at 128×128 8 steps). With the four
graphs rotating through one round, idle came right after a txt2img graph in every round and img in one round of
four, which read as idle / img = 1.11 with the node costing nothing. So the bench also checks, round by round,
that the two graphs of a pair re-ran the same host nodes (all but the pack's own two) and prints in how many rounds
they did.

Times are ComfyUI's own (execution_start to execution_success in /history). Printed: idle / img (median and
quartiles of the paired rounds; goal 1.00 ± 0.03); the module's cost in host steps, (t_on − t_off) / host step with
host step = (t_off2 − t_off) / steps (the VAE decode and the prompt's fixed costs cancel); the module's first load.
--node-times adds a bench-only pack (timing_nodes/: it wraps ComfyUI's call of each node's function and its
load_models_gpu) and prints, per node, where the time of each pair's two graphs went, and what VAEEncode cost where
it re-ran (the warm-up round). Figures as measured: docs/comfyui.md, Tests.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "live"), str(HERE.parent / "unit"), str(HERE.parents[1])]

import graphs  # noqa: E402
from comfy_client import ComfyClient, Run  # noqa: E402
from comfy_live import ComfyServer  # noqa: E402
from graphs import CHECKPOINT, SDXL_CHECKPOINT  # noqa: E402
from oms_modules import MIXCLIP_POINTER  # noqa: E402
from unet_helpers import TINY_OMS, write_oms_release  # noqa: E402

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
# The host UNet of tiny_comfy_checkpoint.py's SDXL (model_channels 320, channel_mult [1, 1, 1], two res blocks a
# level, transformer depths 0 / 2 / 10 down, none up, 64-channel heads, context 2048) as a One More Step module.
# SingUNet's mid block always has attention (the host's has a res block only): depth 7 there and at the deepest
# level gives 21 transformer layers at the lowest resolution against the host's 20, 125.2 M parameters against 120.0 M.
HOST_SIZED_OMS_XL = {
    **TINY_OMS, "_name_or_path": "h1t/oms_l_mixclip_xl", "block_out_channels": [320, 320, 320],
    "attention_head_dim": 5, "cross_attention_dim": 2048, "norm_num_groups": 32,
    "up_block_types": ["UpBlock2D"] * 3, "use_linear_projection": True, "transformer_layers_per_block": [1, 2, 7],
}  # fmt: skip
OMS_GUIDANCE = 2.0
PACK_NODES = {"loader", "apply"}  # the graph nodes of the pack (graphs.txt2img)


def seconds(run: Run) -> float:
    stamps = {kind: data["timestamp"] for kind, data in run.history["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000


def executed_host_nodes(graph: dict, run: Run) -> frozenset[str]:
    """The nodes ComfyUI ran for this prompt rather than took from its cache, the pack's own left out."""
    cached = next((data["nodes"] for kind, data in run.history["status"]["messages"] if kind == "execution_cached"),
                  [])
    return frozenset(graph) - set(cached) - PACK_NODES


def image_to_image(graph: dict, size: int) -> dict:
    graph = copy.deepcopy(graph)
    graph["grey"] = {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1,
                                                            "color": 0x808080}}
    graph["latent"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["grey", 0], "vae": ["ckpt", 2]}}
    return graph


def run_rounds(client: ComfyClient, rounds: int, graphs_of) -> tuple[dict[str, list[Run]], int]:
    """`rounds` measured rounds after one that warms every graph up; graph k of round r takes slot (k + r) mod n.
    Returns each graph's runs and in how many rounds all graphs re-ran the same host nodes."""
    runs: dict[str, list[Run]] = {}
    alike = 0
    for round_ in range(rounds + 1):
        graphs = graphs_of(seed=100 + round_)
        keys = list(graphs)
        order = keys[round_ % len(keys):] + keys[: round_ % len(keys)]
        executed = set()
        for key in order:
            run = client.run(graphs[key])
            assert run.succeeded, run.failure
            executed.add(executed_host_nodes(graphs[key], run))
            if round_:
                runs.setdefault(key, []).append(run)
        alike += bool(round_) and len(executed) == 1
    return runs, alike


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return f"median {q2 * scale:.{digits}f} (quartiles {q1 * scale:.{digits}f}–{q3 * scale:.{digits}f})"


LOAD = "(load_models_gpu)"


def node_times(path: Path) -> dict[str, dict[str, float]]:
    """timing_nodes' records by prompt: {"<node id> (<class>)": seconds}, "(load_models_gpu)" for the loads the node
    did."""
    by_prompt: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        key = f"{record['node']} ({record['class']})"
        times = by_prompt.setdefault(record["prompt"], {})
        times[key] = times.get(key, 0.0) + record["seconds"]
    return by_prompt


def print_node_times(runs: dict[str, list[Run]], a: str, b: str, by_prompt: dict[str, dict[str, float]]) -> None:
    """Per node, the median of a's time, b's and of the paired rounds' difference; "outside nodes" is the prompt's
    time that no node function took (ComfyUI's cache bookkeeping between nodes, its setup and clean-up)."""
    def times(run: Run) -> dict[str, float]:
        found = dict(by_prompt.get(run.prompt_id, {}))
        found["outside nodes"] = seconds(run) - sum(v for k, v in found.items() if not k.endswith(LOAD))
        return found

    pairs = [(times(x), times(y)) for x, y in zip(runs[a], runs[b], strict=True)]
    keys = sorted({key for pair in pairs for side in pair for key in side},
                  key=lambda k: (k == "outside nodes", -statistics.median(pair[0].get(k, 0.0) for pair in pairs)))
    print(f"  per node (--node-times), ms: {a} | {b} | {a} − {b}, medians over the paired rounds")
    for key in keys:
        x = [pair[0].get(key, 0.0) * 1000 for pair in pairs]
        y = [pair[1].get(key, 0.0) * 1000 for pair in pairs]
        print(f"    {key:>34}: {statistics.median(x):8.1f} | {statistics.median(y):8.1f} | "
              f"{statistics.median(p - q for p, q in zip(x, y, strict=True)):+7.1f}")


def print_encode_cost(by_prompt: dict[str, dict[str, float]], img_seconds: list[float]) -> None:
    """What re-encoding the image costs where the cache lost it (the warm-up round: idle after a txt2img prompt)."""
    encodes = [times[key] for times in by_prompt.values() for key in times if key.endswith("(VAEEncode)")]
    if encodes:
        median = statistics.median(encodes)
        print(f"  VAEEncode where it re-ran ({len(encodes)}×, warm-up only): median {median * 1000:.1f} ms = "
              f"{median / statistics.median(img_seconds):.1%} of an img prompt")


def write_module(family: str, folder: Path) -> SingModule:
    """The bench's random module, written where ComfyUI finds it as "bench-sing" (see the module docstring)."""
    torch.manual_seed(0)
    if family == "sd15":
        module = SingModule(UNetConfig.from_dict(HOST_SHAPED_MODULE))
        save_module(module, None, folder / "bench-sing.safetensors")
        return module
    module = SingModule(UNetConfig.from_dict(HOST_SIZED_OMS_XL))
    write_oms_release(folder / "bench-sing", module.unet.state_dict(), family="sdxl", config=HOST_SIZED_OMS_XL,
                      text_config=MIXCLIP_POINTER)
    return module


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("sd15", "sdxl"), default="sd15",
                        help="the host checkpoint and its module (see above)")
    parser.add_argument("--rounds", type=int, default=16, help="measured rounds per comparison")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint of --family made by tiny_comfy_checkpoint.py")
    parser.add_argument("--node-times", action="store_true",
                        help="also link timing_nodes/ and print where each graph's time went, node by node")
    parser.add_argument("--log", type=Path, help="keep ComfyUI's console log here")
    args = parser.parse_args(argv)
    comfy_dir = Path(os.environ["COMFYUI_DIR"])
    python = Path(os.environ.get("COMFYUI_PYTHON") or comfy_dir.parent / "venv/bin/python")
    common = {"steps": args.steps, "size": args.size, "cfg": 7.0}
    checkpoint_name = CHECKPOINT if args.family == "sd15" else SDXL_CHECKPOINT

    def txt2img(module: str | None, **options) -> dict:
        graph = graphs.txt2img(module=module, checkpoint=checkpoint_name, **options)
        if module is not None and args.family == "sdxl":  # One More Step: its own guidance, "" from this CLIP
            graph["apply"]["inputs"].update(guidance_scale=OMS_GUIDANCE, clip=["ckpt", 1])
        return graph

    def idle_pair(seed: int) -> dict:
        return {key: image_to_image(txt2img(module=module, seed=seed, denoise=0.6, **common), args.size)
                for key, module in (("idle", "bench-sing"), ("img", None))}

    def from_nothing(seed: int) -> dict:
        return {"on": txt2img(module="bench-sing", seed=seed, **common),
                "off": txt2img(module=None, seed=seed, **common),
                "off2": txt2img(module=None, seed=seed, **{**common, "steps": 2 * args.steps})}

    with tempfile.TemporaryDirectory(prefix="sing-comfy-bench-") as tmp:
        base = Path(tmp)
        (base / "models/checkpoints").mkdir(parents=True)
        (base / "custom_nodes").mkdir()
        checkpoint = args.checkpoint or base / f"tiny-{args.family}-build.safetensors"
        if args.checkpoint is None:
            subprocess.run([str(python), str(HERE / "tiny_comfy_checkpoint.py"), str(comfy_dir), str(checkpoint),
                            args.family], cwd=comfy_dir, check=True, capture_output=True)
        (base / "models/checkpoints" / checkpoint_name).symlink_to(checkpoint.resolve())
        module = write_module(args.family, base / "models/singdiffusion")
        (base / "custom_nodes/sd-webui-singdiffusion").symlink_to(HERE.parents[1], target_is_directory=True)
        timing_file = base / "node-times.jsonl"
        if args.node_times:
            (base / "custom_nodes/sing_timing_nodes").symlink_to(HERE / "timing_nodes", target_is_directory=True)
            os.environ["SING_TIMING_FILE"] = str(timing_file)
        server = ComfyServer(comfy_dir, python, base, Path(), base / "comfyui.log")
        try:
            server.start(300)
            client = ComfyClient(server.url)
            first = client.run(txt2img(module="bench-sing", seed=0, **common))
            assert first.succeeded, first.failure
            idle_runs, idle_alike = run_rounds(client, args.rounds, idle_pair)
            on_runs, on_alike = run_rounds(client, args.rounds, from_nothing)
            log = server.log_text()
        finally:
            server.stop()
        if args.log:
            args.log.write_text(server.log_text())
        by_prompt = node_times(timing_file)

    load = re.search(r"SingDiffusion: loaded bench-sing \[\w+\] .* in ([\d.]+)s", log)
    assert "not applied: the latent is not empty" in log  # idle really did nothing
    times = {key: [seconds(run) for run in runs] for key, runs in (*idle_runs.items(), *on_runs.items())}
    idle_ratio = [idle / img for idle, img in zip(times["idle"], times["img"], strict=True)]
    step = [(off2 - off) / args.steps for off, off2 in zip(times["off"], times["off2"], strict=True)]
    extra = [on - off for on, off in zip(times["on"], times["off"], strict=True)]
    kind = (f"SingDiffusion, {sum(p.numel() for p in module.parameters()) / 1e6:.1f} M parameters, host-UNet-shaped"
            if args.family == "sd15" else f"One More Step (release layout), "
            f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f} M parameters, host-UNet-sized, w {OMS_GUIDANCE}")
    print(f"ComfyUI {args.family} {args.size}×{args.size}, euler, CFG 7, {args.rounds} paired rounds per comparison; "
          f"module: {kind}")
    print(f"applied but idle (image to image, denoise 0.6, {args.steps} steps) vs without the node; the same host "
          f"nodes re-ran in {idle_alike}/{args.rounds} rounds")
    for key in ("idle", "img"):
        print(f"  {key:>4}: {spread(times[key], 1000, 1)} ms")
    print(f"  idle / img, paired rounds: {spread(idle_ratio)}   (goal 1.00 ± 0.03)")
    if args.node_times:
        print_node_times(idle_runs, "idle", "img", by_prompt)
        print_encode_cost(by_prompt, times["img"])
    print(f"from nothing ({args.steps} steps) vs without the node, and without it at {2 * args.steps} steps; the same "
          f"host nodes re-ran in {on_alike}/{args.rounds} rounds")
    for key in ("on", "off", "off2"):
        print(f"  {key:>4}: {spread(times[key], 1000, 1)} ms")
    print(f"  host step (t_off2 − t_off) / {args.steps}: {spread(step, 1000, 1)} ms")
    print(f"  module, t_on − t_off: {spread(extra, 1000, 1)} ms = "
          f"{statistics.median(extra) / statistics.median(step):.2f} host steps")
    if args.node_times:
        print_node_times(on_runs, "on", "off", by_prompt)
    print(f"first use: module load {float(load.group(1)) * 1000 if load else float('nan'):.0f} ms (console), "
          f"whole first prompt {seconds(first) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
