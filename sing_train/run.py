"""One training run as `python -m sing_core train` does it, in every process of a launch: data → frozen encoders →
network → the loop (sing_core.train) → the module file, with a checkpoint in the output folder to resume from.

The output folder holds <name>.safetensors (the module: the EMA weights when --ema-decay is set, with
<name>-raw.safetensors beside it holding the raw ones), checkpoints/checkpoint-STEP/ (accelerate's save_state: weights,
AdamW, every process's RNG, EMA, step and loss history; what a rerun continues from, see sing_train.checkpoints) and
run.json (the settings and where the run stands, rewritten at every checkpoint and at the end). The main process
writes the module and run.json; every process writes its part of a checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from sing_core.checkpoint import load_module, save_module
from sing_core.config import UNetConfig
from sing_core.kinds import OMS, SD, SINGDIFFUSION, VAE_SCALING_FACTORS, ModuleKind
from sing_core.progress import advance_to, progress_bar
from sing_core.train.architectures import PRESETS, config_from_file, preset_config, preset_text_width
from sing_core.train.loop import RANK_SEED_STRIDE, Progress, TrainConfig, Training, TrainState
from sing_core.unet import SingUNet
from sing_train.batches import CaptionEmbeddings, LatentBatches
from sing_train.checkpoints import (
    CHECKPOINTS,
    Checkpointer,
    CheckpointError,
    SavedRun,
    checkpoint_folders,
    read_checkpoint,
)
from sing_train.frozen import load_text, load_vae, text_kind_for
from sing_train.images import DatasetError
from sing_train.latents import LatentDataset, load_latents
from sing_train.parallel import AUTOCAST, AcceleratedParallel, make_accelerator

OLD_STATE_NAME = "train_state.safetensors"  # the single-file state of earlier versions
RUN_NAME = "run.json"
DEFAULT_RESOLUTION = (512, 512)
METHOD_OF_TARGET = {"x0": SINGDIFFUSION, "v": OMS}


class TrainError(ValueError):
    """A run that cannot start or go on; the message says why and what to pass instead."""


@dataclass
class RunSpec:
    data: Path | str  # a latents .safetensors, an image folder with .txt captions, or webdataset shards
    out: Path
    preset: str | None = None  # exactly one of preset, config, init
    config: Path | None = None
    init: Path | None = None
    checkpoint: Path | None = None  # the SD/SDXL checkpoint (file or diffusers folder) whose VAE encodes images
    text_encoder: Path | None = None  # default: the checkpoint, else a text encoder bundled in --init
    tokenizer: Path | None = None  # default: ClipTokenizer.find()
    resolution: tuple[int, int] | None = None  # width, height of images' crops (default 512 × 512)
    name: str = "singdiffusion"
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(steps=1000, lr=1e-4))
    batch_size: int = 8  # per process
    caption_dropout: float = 0.1
    device: str = "auto"
    resume: Path | None = None  # a checkpoint folder; default: the output folder's last checkpoint, if any
    restart: bool = False  # ignore (and delete) the output folder's checkpoints
    checkpoints_total_limit: int | None = None  # keep only the newest N checkpoints (None: all)
    bundle_text_encoder: bool = False
    half: bool = False  # store the module in float16
    text_cache: bool = True
    workers: int = 4  # threads decoding an image folder
    family: str = SD
    dtype: str | None = None  # --dtype; None: the launcher's mixed precision, else fp32
    gradient_checkpointing: bool = False
    data_workers: int = 2  # dataloader processes reading shards, per training process
    min_size: int = 0  # shards: skip images whose original shorter side is below this
    record_keys: bool = False  # write every process's sample keys to keys.json (a data check)


@dataclass
class RunResult:
    module_path: Path
    state: TrainState
    resumed_from: int  # the step the run continued from; 0 for a fresh run
    world_size: int = 1
    samples_per_s: float = 0.0  # per process


def resolve_device(name: str) -> torch.device:
    device = torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(
            f"--device {name}: torch.cuda.is_available() is False (a CPU build of torch, or no visible GPU); use "
            "--device cpu or install a CUDA build of torch"
        )
    return device


def _is_shards(spec: RunSpec) -> bool:
    from sing_train.shards import is_shard_spec

    return is_shard_spec(spec.data)


def load_dataset(spec: RunSpec, device: torch.device, stream: TextIO | None, rank: int = 0,
                 world_size: int = 1) -> LatentDataset:
    """The latents of this process: all of a latents file, or this process's share of an image folder, encoded."""
    data = Path(spec.data)
    if data.is_dir():
        from sing_train.encode import encode_image_folder

        if spec.checkpoint is None:
            raise TrainError(
                f"--data {data} is an image folder: pass --checkpoint SD_MODEL.safetensors, whose VAE encodes it "
                "(or encode it once with `python -m sing_core encode` and pass the latents file)"
            )
        vae = load_vae(spec.checkpoint, spec.family, device)
        width, height = spec.resolution or DEFAULT_RESOLUTION
        with progress_bar(None, "encode", stream=stream, unit="img", disable=stream is None) as bar:
            return encode_image_folder(
                data, vae, width, height, workers=spec.workers, vae_name=spec.checkpoint.name,
                on_progress=lambda done, total: advance_to(bar, done, total), rank=rank, world_size=world_size,
            )
    if spec.resolution is not None:
        raise TrainError(
            f"--resolution applies to image folders and shards; {data} holds latents encoded already (re-encode "
            "the images at another resolution with `python -m sing_core encode`)"
        )
    dataset = load_latents(data)
    scale, expected = dataset.info.get("scale_factor"), VAE_SCALING_FACTORS[spec.family]
    try:
        scale_ok = scale is not None and math.isclose(float(scale), expected, rel_tol=1e-6)
    except ValueError:
        scale_ok = False
    if not scale_ok:
        raise DatasetError(
            f"{data}: scale_factor {scale!r} in its metadata; --family {spec.family} modules learn latents = VAE "
            f"posterior mean × {expected}: scale them so and record scale_factor '{expected}' (or pass the --family "
            "they were encoded for)"
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


def _check_resume(spec: RunSpec, config: UNetConfig, saved: SavedRun) -> None:
    run_file = spec.out / RUN_NAME
    if run_file.is_file():
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("unet_config")
        if recorded is not None and recorded != config.to_dict():
            raise TrainError(
                f"{saved.folder}: {spec.out} holds a run of another network ({run_file} differs from this run's "
                "config); use the same --preset/--config/--init, another --out, or --restart to start over"
            )


def _resume_checkpoint(spec: RunSpec) -> SavedRun | None:
    """The checkpoint this run continues from: --resume, else the newest in --out (none with --restart)."""
    folder = spec.resume
    if folder is None and not spec.restart:
        folders = checkpoint_folders(spec.out)
        if not folders and (spec.out / OLD_STATE_NAME).is_file():
            raise TrainError(
                f"{spec.out / OLD_STATE_NAME}: a state of an earlier version of the trainer, which this one cannot "
                f"continue (it resumes from {spec.out / CHECKPOINTS}/); pass --restart or another --out"
            )
        folder = folders[-1] if folders else None
    if folder is None:
        return None
    try:
        saved = read_checkpoint(folder)
    except CheckpointError as error:
        raise TrainError(f"cannot resume: {error}") from error
    if saved.step > spec.train.steps:
        raise TrainError(f"{folder}: the run is at step {saved.step}, past --steps {spec.train.steps}; raise --steps")
    return saved


def _size(tensor: torch.Tensor) -> str:
    size = tensor.numel() * tensor.element_size()
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


@dataclass
class _Data:
    batches: object  # LatentBatches or ShardBatches: sample_batch(index, generator) → (x0, cond)
    describe: str
    samples: int | None  # None for an endless stream
    latent_shape: list[int] | None


def _latent_data(spec, text, device, parallel, stream) -> _Data:
    # An image folder is split: each process encodes its own share and draws its batches from it alone, in an order
    # of its own (rank 0 keeps the one-process seed). A latents file is read whole by every process, which take
    # turns at the batches of one shared order (sing_train.batches).
    split = Path(spec.data).is_dir()
    rank, world_size = (parallel.rank, parallel.world_size) if split else (0, 1)
    dataset = load_dataset(spec, device, stream, rank, world_size)
    with progress_bar(None, "text", stream=stream, unit="caption", disable=stream is None) as bar:
        embeddings = CaptionEmbeddings(dataset.captions, text.encode, cache=spec.text_cache,
                                       on_progress=lambda done, total: advance_to(bar, done, total))
    seed = spec.train.seed + rank * RANK_SEED_STRIDE if split else spec.train.seed
    batches = LatentBatches(dataset.latents, embeddings, batch_size=spec.batch_size,
                            caption_dropout=spec.caption_dropout, seed=seed, device=device,
                            rank=0 if split else parallel.rank, world_size=1 if split else parallel.world_size,
                            sources=dataset.sources if spec.record_keys and dataset.sources else None)
    cache = "" if embeddings.table is None else f", their embeddings {_size(embeddings.table)} in memory"
    shape = list(dataset.latents.shape[1:])
    samples = parallel.sum(len(dataset.captions)) if split else len(dataset.captions)
    share = f" (this process's share of {samples} images)" if split and parallel.world_size > 1 else ""
    describe = (f"{len(dataset.captions)} latents {'x'.join(map(str, shape))}{share}, {len(embeddings.texts)} "
                f"distinct captions{cache}")
    return _Data(batches, describe, samples, shape)


def _shard_data(spec, text, device, parallel, resumed_from) -> _Data:
    from sing_train.shards import ShardBatches, ShardStream, expand_shards

    urls = expand_shards(spec.data)
    width, height = spec.resolution or DEFAULT_RESOLUTION
    # A resumed run shuffles the shards anew (seeded by the step it resumes from): webdataset streams have no
    # position to seek to, so the interrupted epoch's order is not replayed.
    stream = ShardStream(urls, rank=parallel.rank, world_size=parallel.world_size,
                         seed=spec.train.seed + resumed_from, first_epoch=0, width=width, height=height,
                         min_size=spec.min_size)
    vae = None
    if not _encoded_shards(urls[0]):
        vae = load_vae(spec.checkpoint, spec.family, device)
        if width % vae.downsampling or height % vae.downsampling:
            raise TrainError(f"--resolution {width}x{height}: this VAE needs multiples of {vae.downsampling}")
    batches = ShardBatches(stream, batch_size=spec.batch_size, workers=spec.data_workers,
                           caption_dropout=spec.caption_dropout, encode_images=None if vae is None else vae.encode,
                           encode_text=text.encode, device=device, record_keys=spec.record_keys)
    what = "encoded latents" if vae is None else f"images at {width}x{height}"
    return _Data(batches, f"{len(urls)} shards of {what}", None, None)


def _encoded_shards(url: str) -> bool:
    """Whether the first sample of the first shard is encoded (x0 + cond) rather than an image."""
    from webdataset.tariterators import tarfile_samples

    from sing_train.shards import ENCODED_EXTENSION

    for sample in tarfile_samples([{"url": url}], handler=lambda error: True):
        return ENCODED_EXTENSION in sample
    return False


def _record(spec, config, text, data, parallel, state, resumed_from, counts, rate) -> dict:
    losses = state.losses
    return {
        "format": "sing_core.train_run/2",
        "unet_config": config.to_dict(),
        "kind": ModuleKind(METHOD_OF_TARGET[spec.train.target], spec.family, text_kind_for(text, spec.family))
        .to_metadata(),
        "data": str(spec.data),
        "samples": data.samples,
        "latent_shape": data.latent_shape,
        "text_encoder": text.source,
        "train": dataclasses.asdict(spec.train),
        "batch_size": spec.batch_size,
        "caption_dropout": spec.caption_dropout,
        "step": state.step,
        "world_size": parallel.world_size,
        "global_batch_size": parallel.world_size * spec.batch_size * spec.train.accumulation_steps,
        "ema_decay": spec.train.ema_decay,
        "resumed_from": resumed_from,
        "skipped_samples": counts[0],
        "filtered_samples": counts[1],
        "samples_per_s_per_process": rate,
        "samples_per_s": rate * parallel.world_size,
        "loss_first": losses[0] if losses else None,
        "loss_last": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
    }


def _check_channels(spec: RunSpec, config: UNetConfig, data: _Data) -> None:
    if data.latent_shape is not None and data.latent_shape[0] != config.in_channels:
        raise DatasetError(
            f"{spec.data}: latents with {data.latent_shape[0]} channels; the network takes {config.in_channels} "
            "(SD-1.x/2.x and SDXL latents have 4): encode the images with the --family's VAE"
        )


class _Writer:
    """The run's callbacks: the progress line, and at each checkpoint the module(s), the state and run.json (main
    process only; the counts are summed over every process first, so every process calls on_checkpoint)."""

    def __init__(self, spec, config, text, data, parallel, kind, bundle, resumed_from, bar, main, checkpointer):
        self.spec, self.config, self.text, self.data, self.parallel = spec, config, text, data, parallel
        self.checkpointer = checkpointer
        self.kind, self.bundle, self.resumed_from, self.bar, self.main = kind, bundle, resumed_from, bar, main
        self.before = (0, 0)  # the skipped and filtered counts of the run this one resumes
        run_file = spec.out / RUN_NAME
        if resumed_from and run_file.is_file():
            recorded = json.loads(run_file.read_text(encoding="utf-8"))
            self.before = (recorded.get("skipped_samples") or 0, recorded.get("filtered_samples") or 0)
        name = spec.name.removesuffix(".safetensors")
        self.module_path = spec.out / f"{name}.safetensors"
        self.raw_path = spec.out / f"{name}-raw.safetensors"
        self.rate = 0.0

    def check_loss(self, loss: float, step: int) -> None:
        if not math.isfinite(loss):
            raise TrainError(
                f"the loss became {loss} by step {step}; lower --lr (or use --dtype bf16 rather than fp16) and "
                f"resume from the last checkpoint in {self.spec.out}"
            )

    def on_progress(self, progress: Progress) -> None:
        self.check_loss(progress.loss, progress.step)
        self.rate = progress.samples_per_s
        speed = f"{progress.samples_per_s:.1f} samples/s per process, {progress.samples_per_s_in_all:.1f} in all"
        advance_to(self.bar, progress.step, progress.steps, f"loss {progress.loss:.4f} lr {progress.lr:.1e} {speed}")

    def on_checkpoint(self, state: TrainState) -> None:
        spec = self.spec
        self.check_loss(sum(state.losses[-spec.train.progress_every :]), state.step)
        counts = (self.before[0] + self.parallel.sum(getattr(self.data.batches, "skipped", 0)),
                  self.before[1] + self.parallel.sum(getattr(self.data.batches, "filtered", 0)))
        if self.main:
            spec.out.mkdir(parents=True, exist_ok=True)
            # The module first: save_module refuses non-finite weights, so a broken state never replaces a good one.
            if state.ema is not None:
                save_module(state.ema, self.config, self.module_path, half=spec.half, kind=self.kind, **self.bundle)
                save_module(state.model, self.config, self.raw_path, half=spec.half, kind=self.kind, **self.bundle)
            else:
                save_module(state.model, self.config, self.module_path, half=spec.half, kind=self.kind, **self.bundle)
        self.parallel.barrier()  # a process whose module write failed has stopped the run before any checkpoint
        self.checkpointer.save()  # every process: accelerate writes each one's RNG state
        if not self.main:
            return
        record = _record(spec, self.config, self.text, self.data, self.parallel, state, self.resumed_from, counts,
                         self.rate)
        (spec.out / RUN_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _launch(spec: RunSpec):
    """(the Accelerator, its Parallel seam, the spec with the launch's mixed precision as the loop's autocast)."""
    accelerator = make_accelerator(spec.device, spec.dtype)
    if accelerator.device.type == "cuda":  # TF32 matmuls and convolutions where the GPU has them
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    train = dataclasses.replace(spec.train, autocast=AUTOCAST[accelerator.mixed_precision])
    return accelerator, AcceleratedParallel(accelerator), dataclasses.replace(spec, train=train)


def _network_on(spec: RunSpec, config: UNetConfig, init_module, device: torch.device) -> SingUNet:
    torch.manual_seed(spec.train.seed)  # the initial weights of a fresh network
    unet = SingUNet(config) if init_module is None else init_module.unet
    unet = unet.to(device, torch.float32).requires_grad_(True)
    if spec.gradient_checkpointing:
        unet.enable_gradient_checkpointing()  # each block recomputed in the backward (SingUNet's own)
    return unet


def run_training(spec: RunSpec, stream: TextIO | None = None) -> RunResult:
    """Trains, checkpointing every spec.train.checkpoint_every steps and at the end; returns the module file."""
    stream = stream if stream is not None else sys.stderr
    if spec.out.exists() and not spec.out.is_dir():
        raise TrainError(f"--out {spec.out}: a file; the output is a folder (module, train state, run.json)")
    accelerator, parallel, spec = _launch(spec)
    device, main, train = accelerator.device, accelerator.is_main_process, spec.train
    config, init_module = _network(spec)
    saved = _resume_checkpoint(spec)  # before the slow parts: a bad --resume fails at once
    text = load_text(spec.family, spec.checkpoint, spec.text_encoder, spec.tokenizer, spec.init,
                     None if config is None else config.cross_attention_dim, device)
    config = config if config is not None else preset_config(spec.preset, text.width)
    resumed_from = 0 if saved is None else saved.step
    data = (_shard_data(spec, text, device, parallel, resumed_from) if _is_shards(spec)
            else _latent_data(spec, text, device, parallel, stream if main else None))
    _check_channels(spec, config, data)
    kind = ModuleKind(METHOD_OF_TARGET[train.target], spec.family, text_kind_for(text, spec.family))
    if spec.bundle_text_encoder and not text.bundle:
        raise TrainError(f"--bundle-text-encoder: only a CLIP-L file can be bundled; {text.source} stays separate")
    unet = _network_on(spec, config, init_module, device)
    if saved is not None:
        _check_resume(spec, config, saved)
    elif spec.restart and main:  # the abandoned run's checkpoints must not be resumed by a later run
        shutil.rmtree(spec.out / CHECKPOINTS, ignore_errors=True)
        (spec.out / OLD_STATE_NAME).unlink(missing_ok=True)
    parallel.barrier()
    training = Training(unet, train, parallel)
    checkpointer = Checkpointer(accelerator, training, spec.out, spec.checkpoints_total_limit)
    if saved is None:
        training.seed()
    else:
        try:
            checkpointer.load(saved.folder)  # weights, AdamW, RNG of this process, step, EMA, loss scale
        except CheckpointError as error:
            raise TrainError(f"cannot resume: {error}") from error
    if main:
        resumed = f"resuming from step {saved.step} of {saved.folder}\n" if saved is not None else ""
        print(
            f"{resumed}{data.describe}; network {sum(p.numel() for p in unet.parameters()) / 1e6:.1f}M parameters, "
            f"{kind.describe()}; {parallel.world_size} process(es) on {device.type}, {train.autocast or 'fp32'} "
            f"forward, batch {spec.batch_size} per process × {train.accumulation_steps} accumulation",
            file=stream,
        )
    bar = progress_bar(train.steps, "train", stream=stream, unit="step", initial=resumed_from, disable=not main)
    writer = _Writer(spec, config, text, data, parallel, kind, text.bundle if spec.bundle_text_encoder else {},
                     resumed_from, bar, main, checkpointer)
    try:
        state = training.run(data.batches, on_progress=writer.on_progress, on_checkpoint=writer.on_checkpoint)
    finally:
        bar.close()
    keys = getattr(data.batches, "keys", None)
    if keys is not None:
        every = parallel.gather_objects([keys])
        if main:
            (spec.out / "keys.json").write_text(json.dumps(every) + "\n", encoding="utf-8")
    parallel.barrier()
    return RunResult(writer.module_path, state, resumed_from, parallel.world_size, writer.rate)
