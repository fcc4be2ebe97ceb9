"""The SingDiffusion training loop: teach a time-free module φ(x1, c) to predict x0 from noise that knows nothing of it.

The paper's objective at t = 1: x1 ~ N(0, I) drawn independently of the data, minimise E‖φ(x1, c) − x0‖². Its
minimiser is φ*(x1, c) = E[x0 | c] for every x1, the removable singularity's limit. The loop is generic: any
nn.Module with forward(x1, cond) -> x0 (the demo's small net, sing_core.unet.SingUNet with encoder hidden states) and
any batch source `sample_batch(step, generator) -> (x0, cond)`.

Reproducibility: every random draw of the loop (the batch source's and x1) comes from one torch.Generator seeded with
config.seed, and the global torch RNG (dropout) is seeded too; both states travel in the TrainState, so a run resumed
from a checkpoint ends bit-identical to an uninterrupted one on the same machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

SampleBatch = Callable[[int, torch.Generator], tuple[torch.Tensor, Any]]
AUTOCAST_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with linear warm-up, then cosine decay to lr·min_lr_ratio (1.0 keeps it constant)."""

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 1.0
    grad_clip: float | None = 1.0
    seed: int = 0
    progress_every: int = 10
    checkpoint_every: int = 0  # 0: only the final state goes to on_checkpoint
    accumulation_steps: int = 1  # micro-batches per optimizer step; their gradients add up, the loss is their mean
    # Mixed precision of the forward pass: None, "bf16" or "fp16" (torch.autocast). Weights, gradients and AdamW stay
    # in the model's dtype; fp16 adds dynamic loss scaling (its small range underflows gradients without it).
    autocast: str | None = None

    def __post_init__(self):
        if self.accumulation_steps < 1:
            raise ValueError(f"TrainConfig: accumulation_steps={self.accumulation_steps}; need at least 1")
        if self.autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"TrainConfig: autocast={self.autocast!r}; choose one of {list(AUTOCAST_DTYPES)}")

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / span)))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


@dataclass
class Progress:
    step: int  # steps done
    steps: int
    loss: float  # mean loss since the previous report
    lr: float
    elapsed_s: float  # since this call started (a resumed run counts from its resume)
    eta_s: float


@dataclass
class TrainState:
    """Everything needed to continue: see sing_core.train.checkpoint for saving it without pickle."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor  # torch.Generator.get_state()
    torch_rng: torch.Tensor  # torch.get_rng_state()
    losses: list[float] = field(default_factory=list)
    grad_scaler: dict[str, Any] | None = None  # torch.amp.GradScaler.state_dict() of an fp16 run


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


class _Stepper:
    """One optimizer step: accumulated micro-batches, the forward under autocast, loss scaling for fp16."""

    def __init__(self, model: nn.Module, config: TrainConfig):
        parameter = next(model.parameters())
        self.model, self.config = model, config
        self.device, self.dtype = parameter.device, parameter.dtype
        self.optimizer = make_optimizer(model, config)
        self.autocast_dtype = AUTOCAST_DTYPES[config.autocast]
        self.scaler = torch.amp.GradScaler(self.device.type) if config.autocast == "fp16" else None

    def __call__(self, sample_batch: SampleBatch, generator: torch.Generator, step: int, lr: float) -> float:
        config, optimizer, scaler = self.config, self.optimizer, self.scaler
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(config.accumulation_steps):
            x0, cond = sample_batch(step * config.accumulation_steps + micro, generator)
            x1 = torch.randn(x0.shape, generator=generator).to(self.device, self.dtype)
            x0 = x0.to(self.device, self.dtype)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                x0_hat = self.model(x1, cond)
            loss = nn.functional.mse_loss(x0_hat.to(self.dtype), x0) / config.accumulation_steps
            (loss if scaler is None else scaler.scale(loss)).backward()
            step_loss += loss.item()
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)  # skipped when the scaled gradients overflowed; the scale then backs off
            scaler.update()
        return step_loss


def train_x0_predictor(
    model: nn.Module,
    sample_batch: SampleBatch,
    config: TrainConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    resume: TrainState | None = None,
) -> TrainState:
    """Trains `model` in place for config.steps steps (continuing from `resume` if given) and returns the final state.

    Each step: for each of the config.accumulation_steps micro-batches, (x0, cond) = sample_batch(index, generator)
    with index = step · accumulation_steps + micro (= step without accumulation); x1 ~ N(0, I) like x0 from the same
    generator; loss = MSE(model(x1, cond), x0) (the forward under autocast if configured). Then an AdamW step with the
    scheduled lr and optional gradient clipping.
    """
    if config.steps < 1:
        raise ValueError(f"train_x0_predictor: steps={config.steps}; need at least 1")
    stepper = _Stepper(model, config)
    generator = torch.Generator()
    if resume is None:
        step, losses = 0, []
        generator.manual_seed(config.seed)
        torch.manual_seed(config.seed)
    else:
        if resume.step > config.steps:
            raise ValueError(f"train_x0_predictor: resume state is at step {resume.step}, past steps={config.steps}")
        step, losses = resume.step, list(resume.losses)
        model.load_state_dict(resume.model)
        stepper.optimizer.load_state_dict(resume.optimizer)
        generator.set_state(resume.generator)
        torch.set_rng_state(resume.torch_rng)
        if stepper.scaler is not None and resume.grad_scaler:
            stepper.scaler.load_state_dict(resume.grad_scaler)

    def state() -> TrainState:
        return TrainState(
            step=step,
            model={k: v.detach().clone() for k, v in model.state_dict().items()},
            optimizer=stepper.optimizer.state_dict(),
            generator=generator.get_state(),
            torch_rng=torch.get_rng_state(),
            losses=list(losses),
            grad_scaler=None if stepper.scaler is None else stepper.scaler.state_dict(),
        )

    model.train()
    start, first_step, window = time.perf_counter(), step, []
    while step < config.steps:
        lr = config.lr_at(step)
        losses.append(stepper(sample_batch, generator, step, lr))
        step += 1
        window.append(losses[-1])
        if on_progress is not None and (step % config.progress_every == 0 or step == config.steps):
            elapsed = time.perf_counter() - start
            eta = elapsed / (step - first_step) * (config.steps - step)
            on_progress(Progress(step, config.steps, sum(window) / len(window), lr, elapsed, eta))
            window = []
        if on_checkpoint is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
            on_checkpoint(state())
    model.eval()
    final = state()
    if on_checkpoint is not None and not (config.checkpoint_every and step % config.checkpoint_every == 0):
        on_checkpoint(final)
    return final
