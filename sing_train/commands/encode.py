"""`python -m sing_core encode IMAGES --checkpoint SD.safetensors --out latents.safetensors`: the VAE pass, once.

Every image (with its .txt caption) is resized to cover --resolution, center-cropped, encoded by the checkpoint's VAE
and stored as 0.18215 × the posterior mean, with the captions, in one file that `train --data` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DTYPES = ("fp32", "fp16", "bf16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, help="folder of images, each with a .txt caption of the same name")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="SD-1.x/2.x checkpoint or standalone SD VAE (LDM layout) whose encoder is used",
    )
    parser.add_argument("--out", type=Path, required=True, help="the latents .safetensors to write")
    parser.add_argument("--resolution", default="512", help="crop size: 512 or WIDTHxHEIGHT (multiples of 8)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per VAE call (8)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 … (auto: cuda when available)")
    parser.add_argument("--vae-dtype", choices=DTYPES, default="fp32", help="VAE precision (fp32: exact, once)")
    parser.add_argument("--half", action="store_true", help="store the latents in float16 (half the size)")
    parser.add_argument("--workers", type=int, default=4, help="threads decoding images (4)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def run(args: argparse.Namespace) -> int:
    import torch

    from sing_core.progress import advance_to, progress_bar
    from sing_core.text import WeightsFileError
    from sing_core.vae_file import load_vae_encoder
    from sing_train.encode import encode_image_folder
    from sing_train.images import DatasetError, parse_resolution
    from sing_train.latents import save_latents
    from sing_train.run import TrainError, resolve_device

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.vae_dtype]
    try:
        if args.out.suffix != ".safetensors":
            raise DatasetError(f"--out {args.out}: the latents file must end in .safetensors")
        if args.out.exists() and not args.force:
            raise DatasetError(f"--out {args.out}: already exists; pass --force to overwrite it")
        if args.batch_size < 1 or args.workers < 1 or (args.threads is not None and args.threads < 1):
            raise DatasetError("--batch-size, --workers and --threads must be at least 1")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        width, height = parse_resolution(args.resolution)
        vae = load_vae_encoder(args.checkpoint, resolve_device(args.device), dtype)
        with progress_bar(None, "encode", unit="img") as bar:
            dataset = encode_image_folder(
                args.images,
                vae,
                width,
                height,
                batch_size=args.batch_size,
                workers=args.workers,
                vae_name=args.checkpoint.name,
                on_progress=lambda done, total: advance_to(bar, done, total),
                dtype=torch.float16 if args.half else torch.float32,
            )
        save_latents(args.out, dataset)
    except (DatasetError, TrainError, WeightsFileError, ValueError) as error:
        print(f"encode: {error}", file=sys.stderr)
        return 1
    shape = "x".join(str(s) for s in dataset.latents.shape[1:])
    print(
        f"wrote {args.out}: {len(dataset.captions)} latents of {shape} at {width}x{height}, "
        f"{len(set(dataset.captions))} distinct captions"
    )
    return 0
