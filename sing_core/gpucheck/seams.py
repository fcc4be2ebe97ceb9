"""What the GPU check borrows from the rest of the project, in one place: when the trainer or the UNet bench moves
to another package, repoint these imports and nothing else."""

from __future__ import annotations

from sing_core.commands.bench_unet import reference_unet
from sing_core.train import TrainConfig, train_x0_predictor
from sing_core.train.architectures import SD15


def enable_gradient_checkpointing(unet) -> None:
    """The trainer's switch for gradient checkpointing (SingUNet's own, as diffusers names it)."""
    unet.enable_gradient_checkpointing()


__all__ = ["SD15", "TrainConfig", "enable_gradient_checkpointing", "reference_unet", "train_x0_predictor"]
