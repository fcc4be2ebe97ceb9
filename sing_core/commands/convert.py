"""`python -m sing_core convert SRC DST.safetensors`: a release folder (or module file) to our single .safetensors."""

from __future__ import annotations

import argparse
import sys

from sing_core.kinds import FAMILIES, METHODS, TEXT_KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the release folder (config.json + diffusion_pytorch_model.bin) or a module file")
    parser.add_argument("dst", help="the .safetensors file to write (config in its metadata)")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    kind = parser.add_argument_group(
        "the module's kind", "only for a folder that cannot say it (it is read from the files otherwise); all three"
    )
    kind.add_argument("--method", choices=METHODS, help="singdiffusion (x0) or oms (One More Step, v)")
    kind.add_argument("--family", choices=FAMILIES, help="the latents it predicts: sd (SD-1.x/2.x) or sdxl")
    kind.add_argument("--text", choices=TEXT_KINDS, help="what it reads: clip_l, openclip_h or sdxl")


def run(args: argparse.Namespace) -> int:
    from sing_core.config import ConfigError
    from sing_core.convert import convert_module
    from sing_core.kinds import ModuleKind
    from sing_core.weights import CheckpointError, read_kind, resolve

    stated = [args.method, args.family, args.text]
    if any(stated) and not all(stated):
        print("convert: give --method, --family and --text together (or none: the files say them)", file=sys.stderr)
        return 2
    kind = ModuleKind(*stated) if all(stated) else None
    try:
        source = resolve(args.src, kind)
        dst = convert_module(source.path, args.dst, half=args.half, overwrite=args.force, kind=kind)
        written = read_kind(resolve(dst))
    except (CheckpointError, ConfigError) as error:
        print(f"convert: {error}", file=sys.stderr)
        return 1
    print(f"wrote {dst} from {source.path} ({source.kind}), {'float16' if args.half else 'as stored'}: "
          f"{written.describe()}")
    return 0
