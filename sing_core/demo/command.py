"""`python -m sing_core demo`: the average-brightness problem of a Gaussian start on the SD schedule, and its fix.

On CPU, with nothing downloaded: synthetic latents whose true brightness per prompt is known, the exact Bayes-optimal
denoiser of that data as the host model, and a SingDiffusion module trained here by sing_core.train. Writes
brightness.csv and demo.png to --out and prints the table. Exit status 1 when the module fails the demo's goal (a ≥ 70%
cut of the mean brightness error at w = 1).
"""

from __future__ import annotations

import argparse

QUICK = {"size": 16, "samples": 32, "train_steps": 200}  # CI: a few seconds, the same mechanism at N = 4·16·16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output folder for brightness.csv and demo.png")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run and of the sampling noise")
    parser.add_argument("--samples", type=int, default=None, help="samples per prompt (default 32)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps (DDIM starts at 951 for 20)")
    parser.add_argument("--train-steps", type=int, default=None, help="training steps of the module (default 600)")
    parser.add_argument("--size", type=int, default=None, help="latent side length; latents are 4×size×size (32)")
    quick = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in QUICK.items())
    parser.add_argument("--quick", action="store_true", help=f"small and fast, for tests: {quick}")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: these tensors are small, and one thread "
        "cannot be slowed by oversubscription on a shared machine)",
    )


def config_from_args(args: argparse.Namespace):
    from sing_core.demo.experiment import DemoConfig

    base = DemoConfig()
    quick = QUICK if args.quick else {}
    chosen = {
        "size": args.size if args.size is not None else quick.get("size", base.size),
        "samples": args.samples if args.samples is not None else quick.get("samples", base.samples),
        "train_steps": args.train_steps if args.train_steps is not None else quick.get("train_steps", base.train_steps),
    }
    for name, minimum in (("size", 2), ("samples", 1), ("train_steps", 1)):
        if chosen[name] < minimum:
            flag = "--" + name.replace("_", "-")
            raise SystemExit(f"demo: {flag} {chosen[name]} is too small; use at least {minimum}")
    if args.threads < 1:
        raise SystemExit(f"demo: --threads {args.threads} is too small; use at least 1")
    if not 1 <= args.steps <= 1000:
        raise SystemExit(f"demo: --steps {args.steps} is out of range; use 1 … 1000")
    return DemoConfig(seed=args.seed, steps=args.steps, **chosen)


TOOLS = ("matplotlib", "numpy")  # the figure; requirements/tools.txt and the [tools] extra install them


def missing_tools() -> list[str]:
    import importlib.util

    return [name for name in TOOLS if importlib.util.find_spec(name) is None]


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    missing = missing_tools()
    if missing:  # before any work: the figure comes last, a minute in
        raise SystemExit(f"demo: needs {' and '.join(missing)} for its figure, which this Python lacks; install the "
                         "tools extra: pip install 'sd-webui-singdiffusion[tools]' (or run `python3 run.py demo` from "
                         "a checkout, which installs them into its .venv)")

    import torch

    from sing_core.demo.experiment import run_demo
    from sing_core.demo.report import goal_met, render_png, table, write_csv

    config = config_from_args(args)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SystemExit(f"demo: cannot create --out {out} ({error}); pass a writable folder") from error
    clock = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = run_demo(config)
    finally:
        torch.set_num_threads(threads)  # callers in the same process (tests) keep their setting
    print()
    print(table(result))
    csv_path = write_csv(result, out / "brightness.csv")
    png_path = render_png(result, out / "demo.png")
    total = time.perf_counter() - clock
    print()
    print(f"wrote {csv_path} and {png_path}")
    print(f"time: train {result.seconds['train']:.1f}s, sample {result.seconds['sample']:.1f}s, total {total:.1f}s")
    if not goal_met(result):
        print("demo: the module cut the w = 1 brightness error by less than 70%; the demo did not show the fix")
        return 1
    return 0
