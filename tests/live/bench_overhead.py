"""Benchmark (not a test): what SingDiffusion costs inside a real webui, measured side by side in one run.

    WEBUI_DIR=/path/to/webui WEBUI_PYTHON=/path/to/webui/venv/bin/python python tests/live/bench_overhead.py
        [--family sd15|sdxl] [--rounds 30] [--steps 20] [--size 256]
    FORGE_DIR=/path/to/forge FORGE_PYTHON=/path/to/forge/venv/bin/python python tests/live/bench_overhead.py [...]

The webui is chosen as for the live tier (live_hosts.py). Two servers run at once on 127.0.0.1: A with the
extension, B without it, the same tiny checkpoint (the host's builder; --family sdxl: its SDXL one), and a module of
the host UNet's size (so the module costs about one host step): --family sd15 a SingDiffusion module of its shape
(guided by the CFG scale against the negative prompt), --family sdxl a One More Step module in its release layout
reading the checkpoint's own crossattn (HOST.sdxl_unet_as_diffusers), guidance_scale 2 against "". Either runs cond
and uncond in one batched forward, as the host does its own. Requests alternate
B-absent, A-off, A-on, A-off at twice the steps, the order rotating from round to round, each request with a prompt
of its own (so each encodes its text: the webuis cache the last conditioning by prompt and steps); the medians give
  - present but off / absent  (goal 1.00 ± 0.03: an installed extension that is off costs nothing)
  - (t_on − t_off) / host step, host step = (t_off2 − t_off) / steps so that the decode and the request's fixed
    costs cancel (goal ≤ 1.2: the module costs about one host step, warm); (t_off / steps) as the older, kinder
    reading
and the first use's module load time is read from A's console on its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

LIVE_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(LIVE_DIR), str(LIVE_DIR.parent / "unit"), str(LIVE_DIR.parents[1])]  # helpers, sing_core

from live_hosts import HOST, SKIP_REASON  # noqa: E402
from tiny_sing_module import build_unet  # noqa: E402
from unet_helpers import write_oms_release  # noqa: E402
from webui_client import WebuiClient  # noqa: E402
from webui_server import WebuiServer  # noqa: E402

from sing_core import SingModule, UNetConfig  # noqa: E402

OMS_GUIDANCE = 2.0
# oms_text_encoder/config.json of a module reading SDXL's own conditioning (as h1t/oms_l_mixclip_xl), at its width
SDXL_TEXT_POINTER = {"_class_name": "SDXLTextEncoders", "_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0",
                     "architectures": ["SDXLTextEncoders"]}


def host_shaped_module() -> dict:
    """The host's tiny UNet in diffusers' terms: the module has the host UNet's shape and size."""
    return {"_class_name": "UNet2DConditionModel", "sample_size": 32, "in_channels": 4, "out_channels": 4,
            **dict(HOST.unet_as_diffusers)}


def build_checkpoint(out_dir: Path, family: str) -> Path:
    out_dir.mkdir(parents=True)
    report = HOST.build(out_dir, f"bench-{family}", out_dir.parent, seed=0, latent_channels=4,
                        text_width=HOST.text_width, family=family)
    return Path(report["checkpoint"])


def write_module(folder: Path, family: str) -> int:
    torch.manual_seed(0)
    if family == "sdxl":
        if not HOST.sdxl_unet_as_diffusers:
            raise SystemExit(f"{HOST.title}: live_hosts.py gives no sdxl_unet_as_diffusers for its SDXL checkpoint")
        config = {"_class_name": "UNet2DConditionWoCTModel", "sample_size": None, "in_channels": 4,
                  "out_channels": 4, **dict(HOST.sdxl_unet_as_diffusers)}
        module = SingModule(UNetConfig.from_dict(config))
        pointer = {**SDXL_TEXT_POINTER, "hidden_size": config["cross_attention_dim"]}
        write_oms_release(folder, module.unet.state_dict(), family="sdxl", config=config, text_config=pointer)
        return sum(p.numel() for p in module.parameters())
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
    parser.add_argument("--family", choices=("sd15", "sdxl"), default="sd15")
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
        checkpoint = build_checkpoint(root / "a/models/Stable-diffusion", args.family)
        b_models = root / "b/models/Stable-diffusion"
        b_models.mkdir(parents=True)
        for file in checkpoint.parent.iterdir():
            (b_models / file.name).symlink_to(file)
        module_params = write_module(root / "a/models/SingDiffusion/bench-sing", args.family)
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
            for client in (a, b):  # live previews "Approx NN" (the default) would download SDXL's model for them
                client.set_options(show_progress_type="Approx cheap")
            payload = {"prompt": "a cube", "seed": 7, "steps": args.steps, "width": args.size, "height": args.size,
                       "sampler_name": "Euler", "cfg_scale": 7.0}
            # SingDiffusion: 0 follows the CFG scale; One More Step: its own w (the CFG scale never reaches it)
            sing = {"enabled": True, "module": "bench-sing", "text_source": "host",
                    "guidance_scale": 0.0 if args.family == "sd15" else OMS_GUIDANCE}
            on = {"alwayson_scripts": {"SingDiffusion": {"args": [sing]}}}
            off = {"alwayson_scripts": {"SingDiffusion": {"args": [False]}}}
            first_on = timed(lambda: a.txt2img(**payload, **on))
            load = re.search(r"loaded bench-sing \[\w+\] .* in ([\d.]+)s", servers["a"].log_text())
            for client in (a, b):
                client.txt2img(**payload)  # warm both servers
            # A new prompt for every request: the webuis keep the last request's conditioning keyed on its prompt AND
            # steps, so with one prompt the request after off2 (A's only other step count) encoded its text again
            # and every other A request took it from the cache: on Forge's full-size CLIP-L that read as
            # off / absent = 1.12 and a module costing less than nothing. Now every arm encodes its text.
            prompts = (f"a cube, number {n}" for n in itertools.count())

            def fresh(**options) -> dict:
                return {**payload, "prompt": next(prompts), **options}

            requests = {"absent": lambda: b.txt2img(**fresh()), "off": lambda: a.txt2img(**fresh(**off)),
                        "on": lambda: a.txt2img(**fresh(**on)),
                        "off2": lambda: a.txt2img(**fresh(steps=2 * args.steps, **off))}
            times = {key: [] for key in requests}
            keys = list(requests)
            for round_ in range(args.rounds):
                # The order rotates from round to round, so that no arm always follows the same other.
                for key in keys[round_ % len(keys):] + keys[:round_ % len(keys)]:
                    times[key].append(timed(requests[key]))
            module_ms = [float(ms) for ms in re.findall(r"SingDiffusion: bench-sing .* in ([\d.]+) ms",
                                                         servers["a"].log_text())][2:]  # after the warm-up uses
        finally:
            for server in servers.values():
                server.stop()

    median = {key: statistics.median(values) for key, values in times.items()}
    step = median["off"] / args.steps
    host_step = statistics.median((off2 - off) / args.steps for off, off2 in zip(times["off"], times["off2"],
                                                                                  strict=True))
    extra = statistics.median(on - off for on, off in zip(times["on"], times["off"], strict=True))
    # Requests of one round ran back to back, so a paired ratio cancels the machine's drift between rounds.
    paired = sorted(off / absent for off, absent in zip(times["off"], times["absent"], strict=True))
    quartiles = statistics.quantiles(paired, n=4)
    what = ("SingDiffusion, host-shaped" if args.family == "sd15" else
            f"One More Step (release layout), host-sized, w {OMS_GUIDANCE:g}")
    print(f"{HOST.title} {args.family}: txt2img {args.size}×{args.size}, {args.steps} steps, Euler, CFG 7, "
          f"{args.rounds} alternating rounds; module {module_params / 1e6:.2f} M parameters ({what})")
    for key in ("absent", "off", "on", "off2"):
        print(f"  {key:>6}: median {median[key] * 1000:8.1f} ms  (min {min(times[key]) * 1000:.1f})")
    print(f"present but off / absent: median of paired rounds {statistics.median(paired):.3f} "
          f"(quartiles {quartiles[0]:.3f}–{quartiles[2]:.3f}; ratio of medians {median['off'] / median['absent']:.3f})"
          f"   (goal 1.00 ± 0.03)")
    print(f"host step (t_off2 − t_off) / {args.steps}: median of rounds {host_step * 1000:.1f} ms (t_off / steps: "
          f"{step * 1000:.1f} ms)")
    print(f"module, t_on − t_off: median of rounds {extra * 1000:.1f} ms = {extra / host_step:.2f} host steps "
          f"({(median['on'] - median['off']) / step:.2f} of t_off / steps)   (goal ≤ 1.2)")
    print(f"the module's own time per use (console): median {statistics.median(module_ms):.1f} ms = "
          f"{statistics.median(module_ms) / 1000 / host_step:.2f} host steps (text, x̂0 and the start write)")
    print(f"first use: {first_on * 1000:.0f} ms for the whole request; module load "
          f"{float(load.group(1)) * 1000 if load else float('nan'):.0f} ms (from the console)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
