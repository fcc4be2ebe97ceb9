"""Training the SingDiffusion module: the generic x0-prediction loop and its pickle-free checkpoints."""

from sing_core.train.checkpoint import load_train_state, save_train_state
from sing_core.train.loop import Progress, TrainConfig, TrainState, train_x0_predictor

__all__ = ["Progress", "TrainConfig", "TrainState", "load_train_state", "save_train_state", "train_x0_predictor"]
