"""Training checkpoints as one .safetensors file: tensors as tensors, the rest as JSON metadata, no pickle.

Layout: "model/<name>" for the module's state dict, "ema/<name>" for its moving average (if kept),
"optimizer/<param id>/<key>" for per-parameter optimizer state, "rng/generator" and "rng/torch" for the two RNG states
(one row per process of a many-process run); metadata holds the step, the loss history, the optimizer's
param_groups, any non-tensor per-parameter state and the fp16 loss scaler's state.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from sing_core.train.loop import TrainState
from sing_core.weights import write_safetensors_atomically

FORMAT = "sing_core.train_state/1"


def save_train_state(path: str | Path, state: TrainState) -> Path:
    """Writes atomically (a temporary file, then a rename), so an interrupted save never leaves half a checkpoint."""
    path = Path(path)
    tensors = {f"model/{k}": v.detach().contiguous().clone() for k, v in state.model.items()}
    if state.ema is not None:
        tensors |= {f"ema/{k}": v.detach().contiguous().clone() for k, v in state.ema.items()}
    scalars: dict[str, dict[str, object]] = {}
    for param_id, param_state in state.optimizer["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{param_id}/{key}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    tensors["rng/generator"] = state.generator.clone()
    tensors["rng/torch"] = state.torch_rng.clone()
    try:
        metadata = {
            "format": FORMAT,
            "step": str(state.step),
            "losses": json.dumps(state.losses),
            "param_groups": json.dumps(state.optimizer["param_groups"]),
            "optimizer_scalars": json.dumps(scalars),
            "grad_scaler": json.dumps(state.grad_scaler),
        }
    except TypeError as error:
        raise ValueError(f"save_train_state: optimizer state of {path} is not JSON-serialisable ({error})") from error
    return write_safetensors_atomically(tensors, metadata, path)


def load_train_state(path: str | Path) -> TrainState:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_train_state: {path} does not exist; pass the file a training run saved")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"load_train_state: {path} is not a training checkpoint (format {metadata.get('format')!r}, "
            f"expected {FORMAT!r}); model weights alone cannot resume a run"
        )
    tensors = load_file(str(path))
    model = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    ema = {k.removeprefix("ema/"): v for k, v in tensors.items() if k.startswith("ema/")}
    per_param: dict[int, dict[str, object]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer/"):
            _, param_id, key = name.split("/", 2)
            per_param.setdefault(int(param_id), {})[key] = value
    for param_id, values in json.loads(metadata["optimizer_scalars"]).items():
        per_param.setdefault(int(param_id), {}).update(values)
    return TrainState(
        step=int(metadata["step"]),
        model=model,
        optimizer={"state": per_param, "param_groups": json.loads(metadata["param_groups"])},
        generator=tensors["rng/generator"],
        torch_rng=tensors["rng/torch"],
        losses=json.loads(metadata["losses"]),
        grad_scaler=json.loads(metadata.get("grad_scaler", "null")),
        ema=ema or None,
    )
