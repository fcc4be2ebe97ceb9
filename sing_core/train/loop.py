"""The start-module training loop: teach a time-free module φ(x1, c) to predict x0 (or v) from noise that knows nothing
of it.

SingDiffusion's objective at t = 1: x1 ~ N(0, I) drawn independently of the data, minimise E‖φ(x1, c) − x0‖². Its
minimiser is φ*(x1, c) = E[x0 | c] for every x1, the removable singularity's limit. One More Step's (target "v") is
the same regression on v = −x0, what v-prediction is at SNR 0. The loop is generic: any
nn.Module with forward(x1, cond) -> x0 (the demo's small net, sing_core.unet.SingUNet with encoder hidden states) and
any batch source `sample_batch(step, generator) -> (x0, cond)`.

Reproducibility: every random draw of the loop (the batch source's and x1) comes from one torch.Generator seeded with
config.seed, and the global torch RNG (dropout) is seeded too; both states travel in the TrainState, so a run resumed
from a checkpoint ends bit-identical to an uninterrupted one on the same machine.

Many processes (`parallel`, see Parallel): each process draws from its own generator (seed + rank · RANK_SEED_STRIDE;
rank 0 keeps the one-process seed), the gradients are averaged by the wrapped model's backward (DDP), the recorded
loss is the mean over the processes, and a state holds every process's generator, one row each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

SampleBatch = Callable[[int, torch.Generator], tuple[torch.Tensor, Any]]
AUTOCAST_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}
TARGETS = ("x0", "v")  # what the network's output is trained to be: SingDiffusion's x0, One More Step's v = −x0
RANK_SEED_STRIDE = 1_000_003


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
    target: str = "x0"
    # Exponential moving average of the weights (None: none): ema ← decay·ema + (1 − decay)·weights after every step.
    ema_decay: float | None = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"TrainConfig: target={self.target!r}; choose one of {list(TARGETS)}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig: ema_decay={self.ema_decay}; use a decay between 0 and 1 (0.9999 is usual)")
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
    samples_per_s: float = 0.0  # this process's samples (micro-batch rows) per second since this call started
    world_size: int = 1

    @property
    def samples_per_s_in_all(self) -> float:
        return self.samples_per_s * self.world_size


@dataclass
class TrainState:
    """Everything needed to continue: see sing_core.train.checkpoint for saving it without pickle."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor  # torch.Generator.get_state(); [world_size, n], one row per rank, from many processes
    torch_rng: torch.Tensor  # torch.get_rng_state(); likewise
    losses: list[float] = field(default_factory=list)
    grad_scaler: dict[str, Any] | None = None  # torch.amp.GradScaler.state_dict() of an fp16 run
    ema: dict[str, torch.Tensor] | None = None  # the EMA weights (same keys as model) when config.ema_decay is set


class Parallel(Protocol):
    """What the loop needs of many processes (sing_train.parallel gives it through accelerate)."""

    rank: int
    world_size: int

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model whose forward and backward synchronise the gradients (DDP)."""

    def no_sync(self, wrapped: nn.Module) -> AbstractContextManager:
        """Skip the gradient all-reduce (micro-batches before the last of a step)."""

    def mean(self, value: float) -> float:
        """The mean of a number over the processes."""

    def stack(self, tensor: torch.Tensor) -> torch.Tensor:
        """[world_size, *shape]: every process's tensor, in rank order."""


class _OneProcess:
    rank, world_size = 0, 1

    def wrap(self, model):
        return model

    def no_sync(self, wrapped):
        return nullcontext()

    def mean(self, value):
        return value

    def stack(self, tensor):
        return tensor


def own_row(tensor: torch.Tensor, parallel: Parallel, what: str) -> torch.Tensor:
    if parallel.world_size == 1 and tensor.ndim == 1:
        return tensor
    if tensor.ndim != 2 or tensor.shape[0] != parallel.world_size:
        saved = 1 if tensor.ndim == 1 else tensor.shape[0]
        raise ValueError(
            f"train_x0_predictor: the state's {what} comes from {saved} process(es), this run has "
            f"{parallel.world_size}; resume with as many processes as saved it, or start over"
        )
    return tensor[parallel.rank].clone()  # a copy: Generator.set_state reads a row view's storage from its start


class _Ema:
    """torch's own EMA (torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn), buffers averaged too.

    Every process keeps one and updates it after every optimizer step from the same (all-reduced) weights, so the
    copies stay equal without communication."""

    def __init__(self, model: nn.Module, decay: float):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.averaged.module.state_dict().items()}

    def load(self, weights: dict[str, torch.Tensor], step: int) -> None:
        self.averaged.module.load_state_dict(weights)
        self.averaged.n_averaged.fill_(step)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


class _Stepper:
    """One optimizer step: accumulated micro-batches, the forward under autocast, loss scaling for fp16."""

    def __init__(self, model: nn.Module, config: TrainConfig, parallel: Parallel):
        parameter = next(model.parameters())
        self.model, self.config, self.parallel = model, config, parallel
        self.wrapped = parallel.wrap(model)
        self.samples = 0  # rows of x0 this process has trained on
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
            target = x0 if config.target == "x0" else -x0  # v = −x0 at SNR 0
            last = micro == config.accumulation_steps - 1
            with nullcontext() if last else self.parallel.no_sync(self.wrapped):
                with torch.autocast(
                    self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
                ):
                    raw = self.wrapped(x1, cond)
                loss = nn.functional.mse_loss(raw.to(self.dtype), target) / config.accumulation_steps
                (loss if scaler is None else scaler.scale(loss)).backward()
            step_loss += loss.item()
            self.samples += x0.shape[0]
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)  # skipped when the scaled gradients overflowed; the scale then backs off
            scaler.update()
        return self.parallel.mean(step_loss)


class Training:
    """The live objects of one run (model, AdamW, fp16 loss scaler, EMA, the loop's generator, step, losses) and the
    loop over them. A caller that checkpoints through another library (sing_train: accelerate's save_state) registers
    these objects with it and either calls seed() for a fresh run or restores them, then run()."""

    def __init__(self, model: nn.Module, config: TrainConfig, parallel: Parallel | None = None):
        if config.steps < 1:
            raise ValueError(f"train_x0_predictor: steps={config.steps}; need at least 1")
        self.model, self.config = model, config
        self.parallel = parallel if parallel is not None else _OneProcess()
        self.stepper = _Stepper(model, config, self.parallel)
        self.optimizer, self.scaler = self.stepper.optimizer, self.stepper.scaler
        self.ema = None if config.ema_decay is None else _Ema(model, config.ema_decay)
        self.generator = torch.Generator()
        self.step, self.losses = 0, []

    def seed(self) -> None:
        """A fresh run: every random draw from config.seed (rank 0 keeps the one-process seed)."""
        seed = self.config.seed + self.parallel.rank * RANK_SEED_STRIDE
        self.generator.manual_seed(seed)
        torch.manual_seed(seed)

    def load(self, resume: TrainState) -> None:
        """Continue from a TrainState (sing_core.train.checkpoint's file)."""
        if resume.step > self.config.steps:
            raise ValueError(
                f"train_x0_predictor: resume state is at step {resume.step}, past steps={self.config.steps}"
            )
        self.step, self.losses = resume.step, list(resume.losses)
        self.model.load_state_dict(resume.model)
        self.optimizer.load_state_dict(resume.optimizer)
        self.generator.set_state(own_row(resume.generator, self.parallel, "generator"))
        torch.set_rng_state(own_row(resume.torch_rng, self.parallel, "torch RNG"))
        if self.scaler is not None and resume.grad_scaler:
            self.scaler.load_state_dict(resume.grad_scaler)
        if self.ema is not None:
            self.ema.load(resume.ema if resume.ema is not None else resume.model, resume.step)

    def state(self) -> TrainState:
        """The run as it stands; called on every process (the RNG rows are gathered collectively)."""
        return TrainState(
            step=self.step,
            model={k: v.detach().clone() for k, v in self.model.state_dict().items()},
            optimizer=self.optimizer.state_dict(),
            generator=self.parallel.stack(self.generator.get_state()),
            torch_rng=self.parallel.stack(torch.get_rng_state()),
            losses=list(self.losses),
            grad_scaler=None if self.scaler is None else self.scaler.state_dict(),
            ema=None if self.ema is None else self.ema.state(),
        )

    def run(
        self,
        sample_batch: SampleBatch,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        on_checkpoint: Callable[[TrainState], None] | None = None,
    ) -> TrainState:
        config, parallel = self.config, self.parallel
        self.model.train()
        start, first_step, window = time.perf_counter(), self.step, []
        while self.step < config.steps:
            lr = config.lr_at(self.step)
            self.losses.append(self.stepper(sample_batch, self.generator, self.step, lr))
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
            step = self.step
            window.append(self.losses[-1])
            if on_progress is not None and (step % config.progress_every == 0 or step == config.steps):
                elapsed = time.perf_counter() - start
                eta = elapsed / (step - first_step) * (config.steps - step)
                rate = self.stepper.samples / elapsed if elapsed > 0 else 0.0
                loss = sum(window) / len(window)
                on_progress(Progress(step, config.steps, loss, lr, elapsed, eta, rate, parallel.world_size))
                window = []
            if on_checkpoint is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
                on_checkpoint(self.state())
        self.model.eval()
        final = self.state()
        if on_checkpoint is not None and not (config.checkpoint_every and self.step % config.checkpoint_every == 0):
            on_checkpoint(final)
        return final


def train_x0_predictor(
    model: nn.Module,
    sample_batch: SampleBatch,
    config: TrainConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    resume: TrainState | None = None,
    parallel: Parallel | None = None,
) -> TrainState:
    """Trains `model` in place for config.steps steps (continuing from `resume` if given) and returns the final state.

    Each step: for each of the config.accumulation_steps micro-batches, (x0, cond) = sample_batch(index, generator)
    with index = step · accumulation_steps + micro (= step without accumulation); x1 ~ N(0, I) like x0 from the same
    generator; loss = MSE(model(x1, cond), x0) (the forward under autocast if configured). Then an AdamW step with the
    scheduled lr and optional gradient clipping, then the EMA update if configured.

    With `parallel`, every process calls this with its own batch source; on_progress and on_checkpoint are called on
    every process (the states are gathered collectively), and the caller writes files on one.
    """
    training = Training(model, config, parallel)
    if resume is None:
        training.seed()
    else:
        training.load(resume)
    return training.run(sample_batch, on_progress=on_progress, on_checkpoint=on_checkpoint)
