"""`python -m sing_core inspect PATH`: what a SingDiffusion module file is, read from its header and config."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a release folder (SingDiffusion's, or One More Step's as downloaded) or a module"
                        " .safetensors")


def run(args: argparse.Namespace) -> int:
    from sing_core.checkpoint import describe
    from sing_core.config import ConfigError
    from sing_core.weights import CheckpointError

    try:
        info = describe(args.path)
    except (CheckpointError, ConfigError) as error:
        print(f"inspect: {error}", file=sys.stderr)
        return 1
    rows = [
        ("path", info.path),
        ("layout", info.kind),
        ("method", info.module_kind.method),
        ("latent family", info.module_kind.family),
        ("reads", info.module_kind.text),
        ("what it is", info.module_kind.describe()),
        ("short hash", info.short_hash),
        ("size on disk", f"{info.size_bytes / 2**20:,.1f} MiB"),
        ("parameters", f"{info.parameter_count:,}"),
        ("dtype", info.dtype),
        ("latent channels", info.latent_channels),
        ("cross-attention width", info.cross_attention_dim),
        ("text encoder inside", "yes" if info.has_text_encoder else "no"),
    ]
    for label, value in rows:
        print(f"{label + ':':<24}{value}")
    print("config:")
    print(json.dumps(info.config.to_dict(), indent=2))
    return 0
