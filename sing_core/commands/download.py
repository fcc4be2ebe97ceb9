"""`python -m sing_core download NAME [--dir DIR]`: fetch a catalogue module, resumable, checked before it is kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = Path("models/SingDiffusion")
# A checkout inside a host's extension folder: that host's module folder, relative to the host's root.
HOST_MODULE_FOLDERS = {"extensions": Path("models/SingDiffusion"), "custom_nodes": Path("models/singdiffusion")}


def default_dir(checkout: Path | None = None) -> Path:
    """The host's module folder when this checkout sits in a webui's extensions/ or ComfyUI's custom_nodes/ (so
    `python -m sing_core download NAME` run there with the host's Python needs no --dir), else models/SingDiffusion
    under the current folder."""
    # absolute, not resolved: a checkout linked into extensions/ is where the link is
    checkout = checkout if checkout is not None else Path(__file__).absolute().parents[2]
    folder = HOST_MODULE_FOLDERS.get(checkout.parent.name)
    return checkout.parent.parent / folder if folder is not None else DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a module of `python -m sing_core catalogue` (e.g. oms_b_openclip_xl)")
    parser.add_argument("--dir", default=None, type=Path,
                        help="the module folder (default: the host's, where this checkout is a webui extension or a "
                             "ComfyUI node pack: models/SingDiffusion or models/singdiffusion; else "
                             f"{DEFAULT_DIR} here)")
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
        download_module(args.name, args.dir or default_dir(), base_url=args.base_url, bar_factory=bar,
                        log=lambda line: print(line, file=sys.stderr))
    except (CatalogueError, DownloadError) as error:
        print(f"download: {error}", file=sys.stderr)
        return 1
    return 0
