"""Training a start module: the generic x0/v-prediction loop and its pickle-free checkpoints (torch only; the data,
the frozen encoders and the launch are sing_train's)."""

from sing_core.train.checkpoint import load_train_state, save_train_state
from sing_core.train.loop import Parallel, Progress, TrainConfig, Training, TrainState, train_x0_predictor

__all__ = [
    "Parallel", "Progress", "TrainConfig", "TrainState", "Training", "load_train_state", "save_train_state",
    "train_x0_predictor",
]
