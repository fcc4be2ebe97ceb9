"""`python -m sing_core convert SRC DST.safetensors`: a release folder (or module file) to our single .safetensors."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the release folder (config.json + diffusion_pytorch_model.bin) or a module file")
    parser.add_argument("dst", help="the .safetensors file to write (config in its metadata)")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument("--force", action="store_true", help="overwrite DST if it exists")


def run(args: argparse.Namespace) -> int:
    from sing_core.config import ConfigError
    from sing_core.convert import convert_module
    from sing_core.weights import CheckpointError, resolve

    try:
        source = resolve(args.src)
        dst = convert_module(source.path, args.dst, half=args.half, overwrite=args.force)
    except (CheckpointError, ConfigError) as error:
        print(f"convert: {error}", file=sys.stderr)
        return 1
    print(f"wrote {dst} from {source.path} ({source.kind}), {'float16' if args.half else 'as stored'}")
    return 0
