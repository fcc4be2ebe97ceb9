"""`python -m sing_core convert SRC DST.safetensors`: a release folder (or module file) to our single .safetensors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the release folder (config.json + diffusion_pytorch_model.bin) or a module file")
    parser.add_argument("dst", help="the .safetensors file to write (config in its metadata)")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument("--force", action="store_true", help="overwrite DST if it exists")


def run(args: argparse.Namespace) -> int:
    from sing_core.checkpoint import load_module, save_module
    from sing_core.config import ConfigError
    from sing_core.weights import CheckpointError, resolve

    dst = Path(args.dst)
    try:
        if dst.suffix != ".safetensors":
            raise CheckpointError(f"{dst}: the output must be a .safetensors file")
        source = resolve(args.src)
        if dst.exists() and dst.resolve() in (source.weights.resolve(), source.path.resolve()):
            raise CheckpointError(f"{dst}: that is the source itself; the source is never overwritten")
        if dst.exists() and not args.force:
            raise CheckpointError(f"{dst}: already exists; pass --force to overwrite it")
        module = load_module(source.path)  # validates every key, shape and value
        save_module(module, None, dst, half=args.half)
    except (CheckpointError, ConfigError) as error:
        print(f"convert: {error}", file=sys.stderr)
        return 1
    print(f"wrote {dst} from {source.path} ({source.kind}), {'float16' if args.half else 'as stored'}")
    return 0
