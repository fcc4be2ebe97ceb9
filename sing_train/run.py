"""One training run as `python -m sing_core train` does it: data → text conditioning → network → the loop → our
module file, with a checkpoint in the output folder to resume from.

The output folder holds <name>.safetensors (the module: load_module reads it, the webui uses it),
train_state.safetensors (weights, AdamW, RNG and loss history: what a resumed run continues from) and run.json (the
run's settings, so a resume into a folder of another network is refused).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from sing_core.checkpoint import load_module, save_module
from sing_core.config import UNetConfig
from sing_core.progress import advance_to, progress_bar
from sing_core.text import ClipTextEncoder
from sing_core.train.architectures import PRESETS, config_from_file, preset_config, preset_text_width
from sing_core.train.checkpoint import load_train_state, save_train_state
from sing_core.train.loop import Progress, TrainConfig, TrainState, train_x0_predictor
from sing_core.unet import SingUNet
from sing_core.vae import SD_SCALE_FACTOR
from sing_core.vae_file import load_vae_encoder
from sing_train.batches import CaptionEmbeddings, LatentBatches
from sing_train.encode import encode_image_folder
from sing_train.images import DatasetError
from sing_train.latents import LatentDataset, load_latents

STATE_NAME = "train_state.safetensors"
RUN_NAME = "run.json"
DEFAULT_RESOLUTION = (512, 512)


class TrainError(ValueError):
    """A run that cannot start or go on; the message says why and what to pass instead."""


@dataclass
class RunSpec:
    data: Path  # a latents .safetensors (sing_train.latents) or an image folder with .txt captions
    out: Path
    preset: str | None = None  # exactly one of preset, config, init
    config: Path | None = None
    init: Path | None = None
    checkpoint: Path | None = None  # the SD checkpoint whose VAE encodes an image folder
    text_encoder: Path | None = None  # default: the checkpoint, else a text encoder bundled in --init
    tokenizer: Path | None = None  # default: ClipTokenizer.find()
    resolution: tuple[int, int] | None = None  # width, height of an image folder's crops (default 512 × 512)
    name: str = "singdiffusion"
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(steps=1000, lr=1e-4))
    batch_size: int = 8
    caption_dropout: float = 0.1
    device: str = "cpu"
    resume: Path | None = None  # default: the output folder's train state, if any
    restart: bool = False  # ignore the output folder's train state
    bundle_text_encoder: bool = False
    half: bool = False  # store the module in float16
    text_cache: bool = True
    workers: int = 4


@dataclass
class RunResult:
    module_path: Path
    state: TrainState
    resumed_from: int  # the step the run continued from; 0 for a fresh run


def resolve_device(name: str) -> torch.device:
    device = torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(
            f"--device {name}: torch.cuda.is_available() is False (a CPU build of torch, or no visible GPU); use "
            "--device cpu or install a CUDA build of torch"
        )
    return device


def load_dataset(spec: RunSpec, device: torch.device, stream: TextIO) -> LatentDataset:
    if spec.data.is_dir():
        if spec.checkpoint is None:
            raise TrainError(
                f"--data {spec.data} is an image folder: pass --checkpoint SD_MODEL.safetensors, whose VAE encodes it "
                "(or encode it once with `python -m sing_core encode` and pass the latents file)"
            )
        vae = load_vae_encoder(spec.checkpoint, device)
        width, height = spec.resolution or DEFAULT_RESOLUTION
        with progress_bar(None, "encode", stream=stream, unit="img") as bar:
            return encode_image_folder(
                spec.data, vae, width, height, workers=spec.workers, vae_name=spec.checkpoint.name,
                on_progress=lambda done, total: advance_to(bar, done, total),
            )
    if spec.resolution is not None:
        raise TrainError(
            f"--resolution applies to image folders; {spec.data} holds latents encoded already (re-encode the images "
            "at another resolution with `python -m sing_core encode`)"
        )
    dataset = load_latents(spec.data)
    scale = dataset.info.get("scale_factor")
    try:
        scale_ok = scale is not None and math.isclose(float(scale), SD_SCALE_FACTOR, rel_tol=1e-6)
    except ValueError:
        scale_ok = False
    if not scale_ok:
        raise DatasetError(
            f"{spec.data}: scale_factor {scale!r} in its metadata; the module learns SD-1.x/2.x's latent space, "
            f"latents = VAE posterior mean × {SD_SCALE_FACTOR}: scale them so and record scale_factor "
            f"'{SD_SCALE_FACTOR}'"
        )
    return dataset


def _network(spec: RunSpec):
    """(config or None when it depends on the text width, the module to fine-tune or None)."""
    chosen = [
        name
        for name, value in (("--preset", spec.preset), ("--config", spec.config), ("--init", spec.init))
        if value is not None
    ]
    if len(chosen) != 1:
        raise TrainError(
            f"choose the network with exactly one of --preset ({'/'.join(PRESETS)}), --config or --init; got "
            f"{', '.join(chosen) or 'none'}"
        )
    if spec.init is not None:
        module = load_module(spec.init)
        return module.config, module
    if spec.config is not None:
        return config_from_file(spec.config), None
    if spec.preset not in PRESETS:
        raise TrainError(f"--preset {spec.preset!r}: choose one of {', '.join(PRESETS)}")
    width = preset_text_width(spec.preset)
    return (None if width is None else preset_config(spec.preset, width)), None


def _text_encoder(spec: RunSpec, width: int | None, device: torch.device) -> ClipTextEncoder:
    path, why = spec.text_encoder, ""
    if path is None and spec.checkpoint is not None:
        path, why = spec.checkpoint, " (--text-encoder defaults to --checkpoint)"
    if path is None and spec.init is not None and spec.init.suffix == ".safetensors":
        path, why = spec.init, " (--text-encoder defaults to the text encoder bundled in --init)"
    if path is None:
        raise TrainError(
            "no text encoder: pass --text-encoder (a clip_l.safetensors, an SD-1.x checkpoint, or SD-1.5's "
            "text_encoder/ folder), or --checkpoint with an SD-1.x checkpoint"
        )
    try:
        return ClipTextEncoder.load(path, device, tokenizer=spec.tokenizer, expected_hidden_size=width)
    except ValueError as error:  # the loaders' errors name the file and the fix; add where the path came from
        raise TrainError(f"{error}{why}") from error


def _check_resume(spec: RunSpec, config: UNetConfig, unet: SingUNet, state: TrainState, where: Path) -> None:
    run_file = spec.out / RUN_NAME
    if run_file.is_file():
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("unet_config")
        if recorded is not None and recorded != config.to_dict():
            raise TrainError(
                f"{where}: {spec.out} holds a run of another network ({run_file} differs from this run's config); "
                "use the same --preset/--config/--init, another --out, or --restart to start over"
            )
    expected = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    if {k: tuple(v.shape) for k, v in state.model.items()} != expected:
        raise TrainError(f"{where}: its weights do not fit this network; pass --restart or another --out")
    if state.step > spec.train.steps:
        raise TrainError(f"{where}: the run is at step {state.step}, past --steps {spec.train.steps}; raise --steps")


def _resume_state(spec: RunSpec) -> tuple[TrainState | None, Path | None]:
    path = spec.resume
    if path is None and not spec.restart and (spec.out / STATE_NAME).is_file():
        path = spec.out / STATE_NAME
    if path is None:
        return None, None
    try:
        return load_train_state(path), path
    except (FileNotFoundError, ValueError) as error:
        raise TrainError(f"cannot resume: {error}; to fine-tune a finished module, pass it as --init") from error


def _write_run(spec: RunSpec, config: UNetConfig, dataset: LatentDataset, text_source: str) -> None:
    record = {
        "format": "sing_core.train_run/1",
        "unet_config": config.to_dict(),
        "data": str(spec.data),
        "samples": len(dataset.captions),
        "latent_shape": list(dataset.latents.shape[1:]),
        "text_encoder": text_source,
        "train": dataclasses.asdict(spec.train),
        "batch_size": spec.batch_size,
        "caption_dropout": spec.caption_dropout,
    }
    spec.out.mkdir(parents=True, exist_ok=True)
    (spec.out / RUN_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _size(tensor: torch.Tensor) -> str:
    size = tensor.numel() * tensor.element_size()
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


@dataclass
class _Prepared:
    config: UNetConfig
    dataset: LatentDataset
    embeddings: CaptionEmbeddings
    bundle: dict  # save_module's text_encoder_state / text_encoder_config, when bundled


def _prepare(spec: RunSpec, config: UNetConfig | None, device: torch.device, stream: TextIO) -> _Prepared:
    """The text encoder first (a wrong one fails before a long VAE pass), then the latents and the caption cache."""
    encoder = _text_encoder(spec, None if config is None else config.cross_attention_dim, device)
    if config is None:
        config = preset_config(spec.preset, encoder.model.config.hidden_size)
    dataset = load_dataset(spec, device, stream)
    if dataset.latents.shape[1] != config.in_channels:
        raise DatasetError(
            f"{spec.data}: latents with {dataset.latents.shape[1]} channels; the network takes {config.in_channels} "
            "(SD-1.x/2.x latents have 4): encode the images with an SD-1.x/2.x VAE"
        )
    with progress_bar(None, "text", stream=stream, unit="caption") as bar:
        embeddings = CaptionEmbeddings(dataset.captions, encoder.encode, cache=spec.text_cache,
                                       on_progress=lambda done, total: advance_to(bar, done, total))
    bundle = {}
    if spec.bundle_text_encoder:
        bundle = {
            "text_encoder_state": {k: v.to("cpu") for k, v in encoder.model.state_dict().items()},
            "text_encoder_config": encoder.model.config.to_dict(),
        }
    if spec.text_cache and device.type == "cuda":  # the cache holds every embedding: free the encoder's memory
        del encoder
        torch.cuda.empty_cache()
    return _Prepared(config, dataset, embeddings, bundle)


def run_training(spec: RunSpec, stream: TextIO | None = None) -> RunResult:
    """Trains, checkpointing every spec.train.checkpoint_every steps and at the end; returns the module file."""
    stream = stream if stream is not None else sys.stderr
    if spec.out.exists() and not spec.out.is_dir():
        raise TrainError(f"--out {spec.out}: a file; the output is a folder (module, train state, run.json)")
    device = resolve_device(spec.device)
    config, init_module = _network(spec)
    resume, resume_path = _resume_state(spec)  # before the slow parts: a bad --resume fails at once
    prepared = _prepare(spec, config, device, stream)
    config, dataset, embeddings = prepared.config, prepared.dataset, prepared.embeddings

    torch.manual_seed(spec.train.seed)  # the initial weights of a fresh network
    unet = SingUNet(config) if init_module is None else init_module.unet
    unet = unet.to(device, torch.float32).requires_grad_(True)
    if resume is not None:
        _check_resume(spec, config, unet, resume, resume_path)
        print(f"resuming from step {resume.step} of {resume_path}", file=stream)
    elif spec.restart:  # a state of the abandoned run must not be resumed by a later run without --restart
        (spec.out / STATE_NAME).unlink(missing_ok=True)
    cache = "" if embeddings.table is None else f", their embeddings {_size(embeddings.table)} in memory"
    print(
        f"{len(dataset.captions)} latents {'x'.join(map(str, dataset.latents.shape[1:]))}, "
        f"{len(embeddings.texts)} distinct captions{cache}; network "
        f"{sum(p.numel() for p in unet.parameters()) / 1e6:.1f}M parameters on {device}, "
        f"{spec.train.autocast or 'fp32'} forward",
        file=stream,
    )
    _write_run(spec, config, dataset, str(spec.text_encoder or spec.checkpoint or spec.init))
    batches = LatentBatches(
        dataset.latents,
        embeddings,
        batch_size=spec.batch_size,
        caption_dropout=spec.caption_dropout,
        seed=spec.train.seed,
        device=device,
    )
    module_path = spec.out / f"{spec.name.removesuffix('.safetensors')}.safetensors"
    first_step = 0 if resume is None else resume.step
    bar = progress_bar(spec.train.steps, "train", stream=stream, unit="step", initial=first_step)

    def check_loss(loss: float, step: int) -> None:
        if not math.isfinite(loss):
            raise TrainError(
                f"the loss became {loss} by step {step}; lower --lr (or use --dtype bf16 rather than fp16) and "
                f"resume from the last checkpoint in {spec.out}"
            )

    def on_progress(progress: Progress) -> None:
        check_loss(progress.loss, progress.step)
        advance_to(bar, progress.step, progress.steps, f"loss {progress.loss:.4f} lr {progress.lr:.1e}")

    def on_checkpoint(state: TrainState) -> None:
        check_loss(sum(state.losses[-spec.train.progress_every :]), state.step)
        # The module first: save_module refuses non-finite weights, so a broken state never replaces a good one.
        save_module(state.model, config, module_path, half=spec.half, **prepared.bundle)
        save_train_state(spec.out / STATE_NAME, state)

    try:
        state = train_x0_predictor(
            unet, batches, spec.train, on_progress=on_progress, on_checkpoint=on_checkpoint, resume=resume
        )
    finally:
        bar.close()
    return RunResult(module_path, state, 0 if resume is None else resume.step)
