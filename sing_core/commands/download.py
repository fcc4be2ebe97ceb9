"""`python -m sing_core download NAME [--dir DIR]`: fetch a catalogue module, resumable, checked before it is kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = "models/SingDiffusion"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a module of `python -m sing_core catalogue` (e.g. oms_b_openclip_xl)")
    parser.add_argument("--dir", default=DEFAULT_DIR, type=Path,
                        help=f"the module folder (default {DEFAULT_DIR}, the webuis'; ComfyUI: models/singdiffusion)")
    parser.add_argument("--base-url", default=None,
                        help="another server with Hugging Face's layout (default: SINGDIFFUSION_DOWNLOAD_URL, else "
                             "https://huggingface.co)")


def run(args: argparse.Namespace) -> int:
    from sing_core.catalogue import CatalogueError
    from sing_core.download import DownloadError, download_module
    from sing_core.progress import progress_bar

    try:
        import tqdm  # noqa: F401  (the progress bar: checked before anything is fetched)
    except ImportError:
        print("download: the progress bar needs tqdm: pip install 'sd-webui-singdiffusion[tools]' (or pip install "
              "tqdm)", file=sys.stderr)
        return 1

    def bar(label: str, total: int | None, initial: int):
        return progress_bar(total, label, unit="B", initial=initial)

    try:
        download_module(args.name, args.dir, base_url=args.base_url, bar_factory=bar,
                        log=lambda line: print(line, file=sys.stderr))
    except (CatalogueError, DownloadError) as error:
        print(f"download: {error}", file=sys.stderr)
        return 1
    return 0
