"""`python -m sing_core bench gpu`: the module on a GPU (sing_core.gpucheck), or `--device cpu --rehearse` at tiny
sizes on the CPU."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --rehearse)")
    parser.add_argument("--rehearse", action="store_true", help="tiny networks and sizes: every path, in seconds")
    parser.add_argument("--sections", default="parity,speed,memory,training",
                        help="comma-separated subset of parity,speed,memory,training (default: all)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row to the speed section")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for report.json and report.txt")


def run(args: argparse.Namespace) -> int:
    from sing_core.gpucheck.check import SECTIONS, CheckError, resolve_device, run_check
    from sing_core.gpucheck.report import render, write

    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"bench gpu: unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device, args.rehearse)
    except CheckError as error:
        print(f"bench gpu: {error}", file=sys.stderr)
        return 2
    command = "python -m sing_core bench gpu " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["bench", "gpu"] else [])
    report = run_check(device, rehearse=args.rehearse, sections=sections, compile_row=args.compile, seed=args.seed,
                       command=command.strip(), on_section=lambda s: print(f"bench gpu: {s} ...", flush=True))
    print(render(report))
    if args.out is not None:
        write(report, args.out)
        print(f"bench gpu: wrote {args.out / 'report.json'} and report.txt")
    return 1 if report["errors"] else 0
