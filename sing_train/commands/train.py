"""`python -m sing_core train`: train a start module, SingDiffusion's (--target x0: φ(x1, c) ≈ x0 for x1 ~ N(0, I)
drawn independently of x0) or One More Step's (--target v: φ ≈ v = −x0 at SNR 0), for SD-1.x/2.x or SDXL latents,
from an image folder with .txt captions, a latents file written by `encode`, or webdataset shards.

One process: `python -m sing_core train ...`; many: `accelerate launch [flags] -m sing_core train ...` or
`torchrun --nproc_per_node N -m sing_core train ...` (--batch-size is per process).

Writes OUT/NAME.safetensors (the module, config and kind in its metadata; the EMA weights with --ema-decay, the raw
ones then in OUT/NAME-raw.safetensors), OUT/checkpoints/checkpoint-STEP/ (accelerate's save_state, to resume: a rerun
with the same --out continues from the newest) and OUT/run.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "fp16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        required=True,
        help="a latents .safetensors from `encode`, a folder of images with .txt captions, or webdataset shards "
        "(a .tar, a folder of them, /data/{00000..01023}.tar, pipe:COMMAND) as img2dataset or `encode --shards` "
        "writes them",
    )
    data.add_argument(
        "--checkpoint",
        type=Path,
        help="the host model (single file or diffusers folder) whose VAE encodes images and whose text encoder is "
        "the default: SD-1.x/2.x for --family sd, SDXL for --family sdxl",
    )
    data.add_argument(
        "--family",
        choices=("sd", "sdxl"),
        default="sd",
        help="latent family the module predicts: sd (SD-1.x/2.x VAE, 0.18215) or sdxl (SDXL VAE, 0.13025, SDXL's "
        "own 2048-wide text)",
    )
    data.add_argument("--resolution", help="crop size of images: 512 (default) or WIDTHxHEIGHT")
    data.add_argument(
        "--text-encoder",
        type=Path,
        help="--family sd: CLIP-L (clip_l.safetensors, an SD-1.x checkpoint, SD-1.5's text_encoder/) or OpenCLIP "
        "ViT-H (SD-2's text_encoder/ folder) for One More Step-style modules",
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
    data.add_argument("--workers", type=int, default=4, help="threads decoding an image folder (4)")
    data.add_argument(
        "--data-workers", type=int, default=2, help="dataloader processes reading shards, per training process (2)"
    )
    data.add_argument(
        "--min-size", type=int, default=0, help="shards: skip images whose original shorter side is below this"
    )
    data.add_argument(
        "--record-keys", action="store_true", help="write OUT/keys.json: the sample keys each process trained on"
    )
    network = parser.add_argument_group("network (one of)").add_mutually_exclusive_group(required=True)
    network.add_argument(
        "--preset",
        choices=("sd15", "oms-b", "tiny"),
        help="sd15: SD-1.5's UNet shape (832M parameters, CLIP-L's 768-wide text); oms-b: One More Step's module "
        "(154M, the text encoder's width); tiny: tests, CPU experiments",
    )
    network.add_argument("--config", type=Path, help="a diffusers UNet2DConditionModel config.json")
    network.add_argument("--init", type=Path, help="fine-tune an existing module (file or release folder)")
    train = parser.add_argument_group("training")
    train.add_argument("--out", type=Path, required=True, help="output folder (resumes from it when it has a state)")
    train.add_argument(
        "--target",
        choices=("x0", "v"),
        default="x0",
        help="x0: SingDiffusion's objective; v: One More Step's (v = −x0 at SNR 0). Written into the module's kind",
    )
    train.add_argument(
        "--ema-decay",
        type=float,
        help="keep an EMA of the weights (e.g. 0.9999): it becomes NAME.safetensors, the raw weights NAME-raw",
    )
    train.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: far less memory, about a third more compute",
    )
    train.add_argument("--name", default="singdiffusion", help="module file name without .safetensors")
    train.add_argument("--steps", type=int, default=1000, help="optimizer steps in all, a resumed run included")
    train.add_argument("--batch-size", type=int, default=8, help="per process (8)")
    train.add_argument(
        "--accumulation",
        type=int,
        default=1,
        help="micro-batches per step (global batch = processes × batch size × this)",
    )
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--warmup-steps", type=int, default=0)
    train.add_argument("--min-lr-ratio", type=float, default=1.0, help="cosine decay to lr × this (1: constant)")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm limit (0: none)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--device",
        default="auto",
        help="auto (a visible GPU, else the CPU), cpu or cuda; launched processes each take the launcher's GPU",
    )
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    train.add_argument(
        "--dtype",
        choices=PRECISIONS,
        help="autocast precision of the forward pass; weights and AdamW stay fp32 (bf16 on GPUs). Default: what "
        "`accelerate launch --mixed_precision` or its config says, else fp32; a contradiction stops the run",
    )
    train.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (and at the end)")
    train.add_argument("--progress-every", type=int, default=10, help="progress line every N steps")
    train.add_argument(
        "--checkpoints-total-limit",
        type=int,
        help="keep only the newest N checkpoints in OUT/checkpoints (default: all)",
    )
    train.add_argument(
        "--resume", type=Path, help="a checkpoint folder OUT/checkpoints/checkpoint-STEP (default: the newest in --out)"
    )
    train.add_argument(
        "--restart", action="store_true", help="delete the checkpoints in --out and start over"
    )
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
        ("--data-workers", args.data_workers, 0),
        ("--min-size", args.min_size, 0),
        ("--warmup-steps", args.warmup_steps, 0),
        ("--checkpoints-total-limit", 1 if args.checkpoints_total_limit is None else args.checkpoints_total_limit, 1),
    ):
        if value < minimum:
            raise TrainError(f"{flag} {value}: use at least {minimum}")
    if not args.lr > 0:
        raise TrainError(f"--lr {args.lr}: a positive learning rate is needed")
    if not 0.0 <= args.caption_dropout <= 1.0:
        raise TrainError(f"--caption-dropout {args.caption_dropout}: a probability between 0 and 1 is needed")
    if args.ema_decay is not None and not 0.0 < args.ema_decay < 1.0:
        raise TrainError(f"--ema-decay {args.ema_decay}: a decay between 0 and 1 (0.9999 is usual)")
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
        target=args.target,
        ema_decay=args.ema_decay,
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
        checkpoints_total_limit=args.checkpoints_total_limit,
        bundle_text_encoder=args.bundle_text_encoder,
        half=args.half,
        text_cache=not args.no_text_cache,
        workers=args.workers,
        family=args.family,
        dtype=args.dtype,
        gradient_checkpointing=args.gradient_checkpointing,
        data_workers=args.data_workers,
        min_size=args.min_size,
        record_keys=args.record_keys,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from sing_core.config import ConfigError
    from sing_core.text import VocabularyError, WeightsFileError
    from sing_core.weights import CheckpointError
    from sing_train.frozen import EncoderError
    from sing_train.images import DatasetError
    from sing_train.parallel import LaunchError
    from sing_train.run import TrainError, run_training
    from sing_train.shards import ShardError

    known = (TrainError, DatasetError, ConfigError, CheckpointError, WeightsFileError, VocabularyError, EncoderError,
             LaunchError, ShardError)
    try:
        spec = spec_from_args(args)
        if args.threads is not None:
            if args.threads < 1:
                raise TrainError(f"--threads {args.threads}: use at least 1")
            torch.set_num_threads(args.threads)
        result = run_training(spec)
    except known as error:
        print(f"train{process_label()}: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # every process says its own failure with its rank, then the launcher stops the rest
        print(f"train{process_label()}: {type(error).__name__}: {error}", file=sys.stderr)
        raise
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    state = result.state
    recent = state.losses[-min(len(state.losses), 50) :]
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
    print(
        f"wrote {result.module_path} at step {state.step}{resumed}; mean loss of the last {len(recent)} steps "
        f"{sum(recent) / max(len(recent), 1):.4f}"
    )
    print(
        f"{result.world_size} process(es): {result.samples_per_s:.1f} samples/s per process, "
        f"{result.samples_per_s * result.world_size:.1f} in all"
    )
    print(f"check it with: python -m sing_core inspect {result.module_path}")
    return 0


def process_label() -> str:
    """' (process R of W)' inside a launch (torchrun and accelerate set RANK and WORLD_SIZE), else ''."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f" (process {os.environ.get('RANK', '0')} of {world})" if world > 1 else ""
