"""`python -m sing_core train`: train a SingDiffusion module with the paper's objective, φ(x1, c) ≈ x0 for x1 ~ N(0, I)
drawn independently of x0, from an image folder with .txt captions or from a latents file written by `encode`.

Writes OUT/NAME.safetensors (the module, config in its metadata), OUT/train_state.safetensors (to resume: a rerun
with the same --out continues where it stopped) and OUT/run.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PRECISIONS = {"fp32": None, "bf16": "bf16", "fp16": "fp16"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        required=True,
        help="a latents .safetensors from `encode`, or a folder of images with .txt captions",
    )
    data.add_argument(
        "--checkpoint",
        type=Path,
        help="SD-1.x/2.x checkpoint whose VAE encodes an image folder (and, if SD-1.x, the default text encoder)",
    )
    data.add_argument("--resolution", help="crop size of an image folder: 512 (default) or WIDTHxHEIGHT")
    data.add_argument(
        "--text-encoder",
        type=Path,
        help="CLIP-L: clip_l.safetensors, an SD-1.x checkpoint or SD-1.5's text_encoder/ folder",
    )
    data.add_argument("--tokenizer", type=Path, help="CLIP tokenizer folder (default: found on this machine)")
    data.add_argument(
        "--caption-dropout",
        type=float,
        default=0.1,
        help='share of captions replaced by "", which trains the unconditional branch (0.1)',
    )
    data.add_argument(
        "--no-text-cache",
        action="store_true",
        help="encode captions every step instead of once (for caption sets too large for memory)",
    )
    data.add_argument("--workers", type=int, default=4, help="threads decoding images (4)")
    network = parser.add_argument_group("network (one of)").add_mutually_exclusive_group(required=True)
    network.add_argument(
        "--preset",
        choices=("sd15", "tiny"),
        help="sd15: SD-1.5's UNet shape (860M parameters, a GPU job); tiny: tests, CPU experiments",
    )
    network.add_argument("--config", type=Path, help="a diffusers UNet2DConditionModel config.json")
    network.add_argument("--init", type=Path, help="fine-tune an existing module (file or release folder)")
    train = parser.add_argument_group("training")
    train.add_argument("--out", type=Path, required=True, help="output folder (resumes from it when it has a state)")
    train.add_argument("--name", default="singdiffusion", help="module file name without .safetensors")
    train.add_argument("--steps", type=int, default=1000, help="optimizer steps in all, a resumed run included")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--accumulation", type=int, default=1, help="micro-batches per step (batch = this × size)")
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--warmup-steps", type=int, default=0)
    train.add_argument("--min-lr-ratio", type=float, default=1.0, help="cosine decay to lr × this (1: constant)")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm limit (0: none)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 … (auto: cuda when available)")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    train.add_argument(
        "--dtype",
        choices=tuple(PRECISIONS),
        default="fp32",
        help="autocast precision of the forward pass; weights and AdamW stay fp32 (bf16 on GPUs)",
    )
    train.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (and at the end)")
    train.add_argument("--progress-every", type=int, default=10, help="progress line every N steps")
    train.add_argument("--resume", type=Path, help="a train_state.safetensors (default: the one in --out)")
    train.add_argument("--restart", action="store_true", help="ignore a train state in --out and start over")
    train.add_argument(
        "--bundle-text-encoder",
        action="store_true",
        help="store the text encoder in the module file (the webui then needs no separate CLIP-L)",
    )
    train.add_argument("--half", action="store_true", help="store the module in float16 (half the size)")


def spec_from_args(args: argparse.Namespace):
    from sing_core.train import TrainConfig
    from sing_train.images import parse_resolution
    from sing_train.run import RunSpec, TrainError

    for flag, value, minimum in (
        ("--steps", args.steps, 1),
        ("--batch-size", args.batch_size, 1),
        ("--accumulation", args.accumulation, 1),
        ("--save-every", args.save_every, 1),
        ("--progress-every", args.progress_every, 1),
        ("--workers", args.workers, 1),
        ("--warmup-steps", args.warmup_steps, 0),
    ):
        if value < minimum:
            raise TrainError(f"{flag} {value}: use at least {minimum}")
    if not args.lr > 0:
        raise TrainError(f"--lr {args.lr}: a positive learning rate is needed")
    if not 0.0 <= args.caption_dropout <= 1.0:
        raise TrainError(f"--caption-dropout {args.caption_dropout}: a probability between 0 and 1 is needed")
    train = TrainConfig(
        steps=args.steps,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        min_lr_ratio=args.min_lr_ratio,
        grad_clip=args.grad_clip or None,
        seed=args.seed,
        progress_every=args.progress_every,
        checkpoint_every=args.save_every,
        accumulation_steps=args.accumulation,
        autocast=PRECISIONS[args.dtype],
    )
    return RunSpec(
        data=args.data,
        out=args.out,
        preset=args.preset,
        config=args.config,
        init=args.init,
        checkpoint=args.checkpoint,
        text_encoder=args.text_encoder,
        tokenizer=args.tokenizer,
        resolution=None if args.resolution is None else parse_resolution(args.resolution),
        name=args.name,
        train=train,
        batch_size=args.batch_size,
        caption_dropout=args.caption_dropout,
        device=args.device,
        resume=args.resume,
        restart=args.restart,
        bundle_text_encoder=args.bundle_text_encoder,
        half=args.half,
        text_cache=not args.no_text_cache,
        workers=args.workers,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from sing_core.config import ConfigError
    from sing_core.text import VocabularyError, WeightsFileError
    from sing_core.weights import CheckpointError
    from sing_train.images import DatasetError
    from sing_train.run import TrainError, run_training

    try:
        spec = spec_from_args(args)
        if args.threads is not None:
            if args.threads < 1:
                raise TrainError(f"--threads {args.threads}: use at least 1")
            torch.set_num_threads(args.threads)
        result = run_training(spec)
    except (TrainError, DatasetError, ConfigError, CheckpointError, WeightsFileError, VocabularyError) as error:
        print(f"train: {error}", file=sys.stderr)
        return 1
    state = result.state
    recent = state.losses[-min(len(state.losses), 50) :]
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
    print(
        f"wrote {result.module_path} at step {state.step}{resumed}; mean loss of the last {len(recent)} steps "
        f"{sum(recent) / max(len(recent), 1):.4f}"
    )
    print(f"check it with: python -m sing_core inspect {result.module_path}")
    return 0
