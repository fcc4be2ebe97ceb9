"""`python -m sing_core encode DATA --checkpoint MODEL --out OUT`: the frozen encoders' pass, once.

DATA is a folder of images with .txt captions, or webdataset shards (img2dataset's layout). Every image is resized to
cover --resolution, center-cropped and encoded by the --family's VAE of --checkpoint as scale × the posterior mean.

- OUT ending in .safetensors (image folders): one latents file with the captions, which `train --data` reads.
- --shards (OUT a folder): webdataset shards OUT/00000.tar, … of KEY.sing.safetensors (x0 and the caption's text
  embedding, so neither the VAE nor the text encoder runs again in training) + KEY.txt, which `train --data` reads
  as well. Unreadable samples are skipped and counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DTYPES = ("fp32", "fp16", "bf16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", help="a folder of images with .txt captions, or webdataset shards")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="the host model (single file or diffusers folder; for --family sd also a standalone SD VAE in LDM "
        "layout) whose VAE encodes",
    )
    parser.add_argument("--family", choices=("sd", "sdxl"), default="sd", help="latent family (sd: 0.18215, sdxl)")
    parser.add_argument("--out", type=Path, required=True, help="the latents .safetensors, or with --shards a folder")
    parser.add_argument(
        "--shards", action="store_true", help="write x0 + text-embedding shards (the text encoder runs here too)"
    )
    parser.add_argument("--text-encoder", type=Path, help="--shards: the text encoder (default: --checkpoint's)")
    parser.add_argument("--tokenizer", type=Path, help="CLIP tokenizer folder (default: found on this machine)")
    parser.add_argument("--samples-per-shard", type=int, default=1000, help="--shards: samples per .tar (1000)")
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

    from sing_core.text import WeightsFileError
    from sing_train.frozen import EncoderError, load_vae
    from sing_train.images import DatasetError, parse_resolution
    from sing_train.run import TrainError, resolve_device
    from sing_train.shards import ShardError

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.vae_dtype]
    try:
        if not args.shards and args.out.suffix != ".safetensors":
            raise DatasetError(f"--out {args.out}: the latents file must end in .safetensors (or pass --shards)")
        if args.out.exists() and not args.force and (not args.shards or any(args.out.glob("*.tar"))):
            raise DatasetError(f"--out {args.out}: already exists; pass --force to overwrite it")
        if min(args.batch_size, args.workers, args.samples_per_shard) < 1 or (args.threads or 1) < 1:
            raise DatasetError("--batch-size, --workers, --samples-per-shard and --threads must be at least 1")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        width, height = parse_resolution(args.resolution)
        device = resolve_device(args.device)
        vae = load_vae(args.checkpoint, args.family, device, dtype)
        if args.shards:
            return _write_shards(args, vae, device, width, height)
        return _write_latents_file(args, vae, width, height)
    except (DatasetError, TrainError, WeightsFileError, EncoderError, ShardError, ValueError) as error:
        print(f"encode: {error}", file=sys.stderr)
        return 1


def _write_latents_file(args, vae, width: int, height: int) -> int:
    import torch

    from sing_core.progress import advance_to, progress_bar
    from sing_train.encode import encode_image_folder
    from sing_train.latents import save_latents

    with progress_bar(None, "encode", unit="img") as bar:
        dataset = encode_image_folder(
            Path(args.images), vae, width, height, batch_size=args.batch_size, workers=args.workers,
            vae_name=args.checkpoint.name, on_progress=lambda done, total: advance_to(bar, done, total),
            dtype=torch.float16 if args.half else torch.float32,
        )
    save_latents(args.out, dataset)
    shape = "x".join(str(s) for s in dataset.latents.shape[1:])
    print(
        f"wrote {args.out}: {len(dataset.captions)} latents of {shape} at {width}x{height}, "
        f"{len(set(dataset.captions))} distinct captions"
    )
    return 0


def _write_shards(args, vae, device, width: int, height: int) -> int:
    from sing_core.progress import progress_bar
    from sing_train.frozen import load_text
    from sing_train.shard_writer import encode_to_shards

    text = load_text(args.family, args.checkpoint, args.text_encoder, args.tokenizer, None, None, device)
    with progress_bar(None, "encode", unit="img") as bar:
        written, skipped, shards = encode_to_shards(
            args.images, args.out, vae, text, width=width, height=height, batch_size=args.batch_size,
            per_shard=args.samples_per_shard, half=args.half, on_batch=bar.update,
        )
    print(f"wrote {shards} shards to {args.out}: {written} samples ({text.kind} text, {text.width} wide), "
          f"{skipped} skipped as unreadable")
    return 0
