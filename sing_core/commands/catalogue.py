"""`python -m sing_core catalogue`: the known modules, what each fits, where it comes from and how to get it."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from sing_core.catalogue import load_catalogue

    del args
    for entry in load_catalogue().entries:
        print(entry.row())
        print(f"    {entry.title}; source: {entry.source_page}")
        print(f"    get it: {entry.how_to_get()}")
        print(f"    files: {entry.download_page}")
        print(f"    text encoder: {entry.text_needed}")
    return 0
