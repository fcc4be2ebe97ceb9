"""Benchmark (not a test): what SingDiffusion costs inside a real webui, measured side by side in one run.

    WEBUI_DIR=/work/webui WEBUI_PYTHON=/work/webui/venv/bin/python python tests/live/bench_overhead.py [--rounds 30]
    FORGE_DIR=/work/forge FORGE_PYTHON=/work/forge/venv/bin/python python tests/live/bench_overhead.py [...]

The webui is chosen as for the live tier (live_hosts.py). Two servers run at once on 127.0.0.1: A with the
extension, B without it, the same tiny SD-1 checkpoint (the host's builder), and a module of the same shape as the
host UNet (so the module costs about one host step). Requests alternate
B-absent, A-off, A-on each round; the medians give
  - present but off / absent  (goal 1.00 ± 0.03: an installed extension that is off costs nothing)
  - (t_on − t_off) / (t_off / steps)  (goal ≤ 1.2: the module costs about one host step, warm)
and the first use's module load time is read from A's console on its own.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

LIVE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LIVE_DIR))

from live_hosts import HOST, SKIP_REASON  # noqa: E402
from tiny_sing_module import build_unet  # noqa: E402
from webui_client import WebuiClient  # noqa: E402
from webui_server import WebuiServer  # noqa: E402


def host_shaped_module() -> dict:
    """The host's tiny UNet in diffusers' terms: the module has the host UNet's shape and size."""
    return {"_class_name": "UNet2DConditionModel", "sample_size": 32, "in_channels": 4, "out_channels": 4,
            **dict(HOST.unet_as_diffusers)}


def build_checkpoint(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True)
    report = HOST.build(out_dir, "bench-sd1", out_dir.parent, seed=0, latent_channels=4, text_width=HOST.text_width)
    return Path(report["checkpoint"])


def write_module(folder: Path) -> int:
    torch.manual_seed(0)
    config = host_shaped_module()
    unet = build_unet(config)
    with torch.no_grad():
        unet.conv_out.reset_parameters()
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    torch.save(unet.state_dict(), folder / "diffusion_pytorch_model.bin")
    return sum(p.numel() for p in unet.parameters())


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--start-timeout", type=float, default=600)
    args = parser.parse_args(argv)
    if HOST is None:
        parser.error(SKIP_REASON)
    webui_dir, python = HOST.root, HOST.python

    with tempfile.TemporaryDirectory(prefix="sing-bench-") as tmp:
        root = Path(tmp)
        checkpoint = build_checkpoint(root / "a/models/Stable-diffusion")
        b_models = root / "b/models/Stable-diffusion"
        b_models.mkdir(parents=True)
        for file in checkpoint.parent.iterdir():
            (b_models / file.name).symlink_to(file)
        module_params = write_module(root / "a/models/SingDiffusion/bench-sing")
        (root / "a/extensions").mkdir(parents=True)
        (root / "a/extensions/sd-webui-singdiffusion").symlink_to(LIVE_DIR.parents[1], target_is_directory=True)

        servers = {name: WebuiServer(webui_dir=webui_dir, python=python, data_dir=root / name,
                                     checkpoint=root / name / "models/Stable-diffusion" / checkpoint.name,
                                     log_path=root / f"{name}.log") for name in ("a", "b")}  # fmt: skip
        try:
            for server in servers.values():
                server.start(args.start_timeout)
            a, b = WebuiClient(servers["a"].url), WebuiClient(servers["b"].url)
            a.set_options(singdiffusion_timings=True)  # the console then gives the module's own time per use
            payload = {"prompt": "a cube", "seed": 7, "steps": args.steps, "width": args.size, "height": args.size,
                       "sampler_name": "Euler", "cfg_scale": 7.0}
            on = {"alwayson_scripts": {"SingDiffusion": {"args": [True, "bench-sing", 0.0, "host"]}}}
            off = {"alwayson_scripts": {"SingDiffusion": {"args": [False]}}}
            first_on = timed(lambda: a.txt2img(**payload, **on))
            load = re.search(r"loaded bench-sing \[\w+\] .* in ([\d.]+)s", servers["a"].log_text())
            for client in (a, b):
                client.txt2img(**payload)  # warm both servers
            times = {"absent": [], "off": [], "on": []}
            for _ in range(args.rounds):
                times["absent"].append(timed(lambda: b.txt2img(**payload)))
                times["off"].append(timed(lambda: a.txt2img(**payload, **off)))
                times["on"].append(timed(lambda: a.txt2img(**payload, **on)))
            module_ms = [float(ms) for ms in re.findall(r"SingDiffusion: bench-sing .* in ([\d.]+) ms",
                                                         servers["a"].log_text())][2:]  # after the warm-up uses
        finally:
            for server in servers.values():
                server.stop()

    median = {key: statistics.median(values) for key, values in times.items()}
    step = median["off"] / args.steps
    # Requests of one round ran back to back, so a paired ratio cancels the machine's drift between rounds.
    paired = sorted(off / absent for off, absent in zip(times["off"], times["absent"], strict=True))
    quartiles = statistics.quantiles(paired, n=4)
    print(f"{HOST.title}: txt2img {args.size}×{args.size}, {args.steps} steps, Euler, CFG 7, {args.rounds} alternating "
          f"rounds; module {module_params / 1e6:.2f} M parameters (host-shaped)")
    for key in ("absent", "off", "on"):
        print(f"  {key:>6}: median {median[key] * 1000:8.1f} ms  (min {min(times[key]) * 1000:.1f})")
    print(f"present but off / absent: median of paired rounds {statistics.median(paired):.3f} "
          f"(quartiles {quartiles[0]:.3f}–{quartiles[2]:.3f}; ratio of medians {median['off'] / median['absent']:.3f})"
          f"   (goal 1.00 ± 0.03)")
    print(f"(t_on − t_off) / (t_off / steps): {(median['on'] - median['off']) / step:.2f}   (goal ≤ 1.2)")
    print(f"the module's own time per use (console): median {statistics.median(module_ms):.1f} ms = "
          f"{statistics.median(module_ms) / 1000 / step:.2f} host steps (text, x̂0 and the start write)")
    print(f"first use: {first_on * 1000:.0f} ms for the whole request; module load "
          f"{float(load.group(1)) * 1000 if load else float('nan'):.0f} ms (from the console)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
