"""A run's checkpoints through 🤗 accelerate's save_state / load_state, laid out as diffusers' training examples do.

OUT/checkpoints/checkpoint-STEP/ holds what accelerate writes: model.safetensors (the network, safetensors),
optimizer.bin (AdamW), random_states_R.pkl (python, numpy, torch and CUDA RNG of process R: every process writes
its own) and the objects registered with register_for_checkpointing, in this order: custom_checkpoint_0.pkl the
run's position (RunPosition: the step, the loss history, every process's loop generator), then the EMA (torch's
AveragedModel) when --ema-decay is set, then the fp16 loss scaler when there is one. The learning rate is a function
of the step (TrainConfig.lr_at), so the position restores the schedule too. The data position is the step as well:
latents and image folders draw batch b from (seed, b, rank, world size) alone; webdataset streams cannot seek, so a
resumed run reshuffles the shards seeded by the step it continues from.

A checkpoint is written into checkpoint-STEP.partial and renamed once every process has written its part, so a run
killed while saving leaves the previous checkpoint as the last complete one. --checkpoints-total-limit N keeps the
newest N, deleting older ones once a new one is complete.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from sing_core.train.loop import Training, own_row

CHECKPOINTS = "checkpoints"
PREFIX = "checkpoint-"
PARTIAL = ".partial"
POSITION_FILE = "custom_checkpoint_0.pkl"  # RunPosition is registered first
MODEL_FILE = "model.safetensors"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message names the folder, the cause and the fix."""


class RunPosition:
    """The loop's state that accelerate does not keep itself: step, loss history and each process's generator.

    capture() gathers the generators of every process (a collective call, so every process makes it before
    save_state; state_dict() then only returns what was gathered: accelerate calls it on the main process alone)."""

    def __init__(self, training: Training):
        self.training = training
        self.captured: dict | None = None

    def capture(self) -> None:
        training = self.training
        self.captured = {
            "step": training.step,
            "losses": list(training.losses),
            "generator": training.parallel.stack(training.generator.get_state()),
            "world_size": training.parallel.world_size,
        }

    def state_dict(self) -> dict:
        if self.captured is None:
            raise RuntimeError("RunPosition.state_dict: capture() it on every process before save_state")
        return self.captured

    def load_state_dict(self, state: dict) -> None:
        training = self.training
        if state["world_size"] != training.parallel.world_size:
            raise CheckpointError(
                f"the checkpoint was written by {state['world_size']} process(es), this launch has "
                f"{training.parallel.world_size}: resume with as many processes (each takes its own RNG state), or "
                "pass --restart"
            )
        if state["step"] > training.config.steps:
            raise CheckpointError(f"the run is at step {state['step']}, past --steps {training.config.steps}")
        training.step, training.losses = int(state["step"]), list(state["losses"])
        training.generator.set_state(own_row(state["generator"], training.parallel, "generator"))


@dataclass
class SavedRun:
    """What a checkpoint folder says without a network to load it into (resume checks, tests, tools)."""

    folder: Path
    step: int
    losses: list[float]
    world_size: int

    def model(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(str(self.folder / MODEL_FILE))


def checkpoint_folders(out: Path) -> list[Path]:
    """The complete checkpoints in OUT/checkpoints, oldest first."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def read_checkpoint(folder: Path) -> SavedRun:
    position_file = folder / POSITION_FILE
    if not folder.is_dir() or not position_file.is_file() or not (folder / MODEL_FILE).is_file():
        raise CheckpointError(
            f"{folder}: not a training checkpoint (a run's checkpoint is a folder OUT/{CHECKPOINTS}/{PREFIX}STEP "
            f"with {MODEL_FILE} and {POSITION_FILE}); to fine-tune a finished module, pass it as --init"
        )
    try:
        state = torch.load(position_file, map_location="cpu", weights_only=True)
        return SavedRun(folder, int(state["step"]), list(state["losses"]), int(state["world_size"]))
    except Exception as error:  # a truncated or foreign file: say which and what to do
        raise CheckpointError(
            f"{position_file}: cannot read the run's position ({type(error).__name__}: {error}); resume from an "
            "earlier checkpoint with --resume, or pass --restart"
        ) from error


class Checkpointer:
    """Registers a Training's objects with the Accelerator, then saves and loads them as one checkpoint folder.

    The network must already be prepared (AcceleratedParallel.wrap calls accelerator.prepare_model, which registers
    it); the optimizer is registered here. The loop keeps stepping its own optimizer and scaler: accelerate only
    saves and restores their state."""

    def __init__(self, accelerator, training: Training, out: Path, total_limit: int | None = None):
        self.accelerator, self.training, self.out, self.total_limit = accelerator, training, out, total_limit
        self.position = RunPosition(training)
        accelerator.prepare_optimizer(training.optimizer)
        accelerator.register_for_checkpointing(self.position)
        if training.ema is not None:
            accelerator.register_for_checkpointing(training.ema.averaged)
        if training.scaler is not None:
            accelerator.register_for_checkpointing(training.scaler)

    def save(self) -> Path:
        """Every process calls this; returns OUT/checkpoints/checkpoint-STEP."""
        accelerator = self.accelerator
        self.position.capture()
        step = self.training.step
        final = self.out / CHECKPOINTS / f"{PREFIX}{step}"
        partial = final.with_name(final.name + PARTIAL)
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)  # a rerun at the same step writes it again
            partial.rename(final)
            self._prune()  # only once the new one is complete: a crash while saving keeps the older ones
        accelerator.wait_for_everyone()
        return final

    def _prune(self) -> None:
        if self.total_limit is None:
            return
        folders = checkpoint_folders(self.out)
        for folder in folders[: max(0, len(folders) - self.total_limit)]:
            shutil.rmtree(folder)

    def load(self, folder: Path) -> None:
        """Every process calls this: weights, AdamW, RNG, position, EMA and scaler as saved."""
        try:
            self.accelerator.load_state(str(folder))
        except CheckpointError as error:
            raise CheckpointError(f"{folder}: {error}") from error
        except (RuntimeError, KeyError, FileNotFoundError) as error:
            raise CheckpointError(
                f"{folder}: accelerate could not restore it into this run ({type(error).__name__}: {error}); it was "
                "written by another network or other options (--ema-decay, fp16): use the same ones, another --out, "
                "or --restart"
            ) from error
