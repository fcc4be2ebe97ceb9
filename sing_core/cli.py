"""`python -m sing_core COMMAND`: one entry point; each command lives in its own module.

A command module provides `add_arguments(parser)` and `run(args) -> int`; it keeps heavy imports inside run(), since
building the parser imports every command module.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

# command -> (module, one-line help). Nested commands ("bench unet") are registered with a space.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("sing_core.demo.command", "CPU demo: the average-brightness problem of a Gaussian start and its fix"),
    "catalogue": ("sing_core.commands.catalogue", "the known modules: what each fits and how to get it"),
    "download": ("sing_core.commands.download", "download a catalogue module (resumable, checked before it is kept)"),
    "convert": ("sing_core.commands.convert", "turn a release folder into one .safetensors module file"),
    "inspect": ("sing_core.commands.inspect_module", "show a module's config, size, dtype and hash"),
    "encode": ("sing_train.commands.encode", "encode images and captions once into latents (a file or shards)"),
    "train": ("sing_train.commands.train", "train a start module (SingDiffusion or OMS) on images, latents, shards"),
    "bench unet": ("sing_core.commands.bench_unet", "time SingUNet against diffusers' UNet (same weights)"),
    "bench gpu": ("sing_core.commands.bench_gpu", "half precision, speed, memory and training on a GPU (or rehearsed)"),
    "bench brightness": ("sing_core.commands.bench_brightness", "the paper's brightness protocol against a webui API"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sing_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for full_name, (module, help_text) in COMMANDS.items():
        head, _, tail = full_name.partition(" ")
        target, name = sub, full_name
        if tail:
            if head not in groups:
                groups[head] = sub.add_parser(head, help=f"{head} commands").add_subparsers(
                    dest="subcommand", required=True, metavar="SUBCOMMAND"
                )
            target, name = groups[head], tail
        command = target.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module)
        importlib.import_module(module).add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return importlib.import_module(args.module).run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `… | head` closed the pipe: not an error of ours
        sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - left open so the final flush succeeds
        return 0
