"""Training throughput: optimizer steps of the SD-1.5-size module through the trainer's own loop (seams), with its
bf16 autocast, with and without gradient checkpointing.

Each step ends in the loop's loss.item(), a device sync, so the time between two progress reports is one whole
step (forward, backward, clipping, AdamW). The first `warmup` steps (allocations, kernel choice) are not counted.
"""

from __future__ import annotations

import itertools
import statistics

import torch

from sing_core.config import UNetConfig
from sing_core.gpucheck import device as dev
from sing_core.gpucheck.seams import TrainConfig, enable_gradient_checkpointing, train_x0_predictor
from sing_core.gpucheck.shapes import Network, Sizes
from sing_core.unet import SingUNet


def _one_variant(network: Network, sizes: Sizes, device, checkpointing: bool, seed: int) -> dict:
    torch.manual_seed(seed)
    with device:
        unet = SingUNet(UNetConfig.from_dict(network.config))
    unet.requires_grad_(True)
    if checkpointing:
        enable_gradient_checkpointing(unet)
    g = torch.Generator().manual_seed(seed)
    batch, side = sizes.train_batch, sizes.side
    x0 = torch.randn(batch, 4, side, side, generator=g).to(device)
    cond = torch.randn(batch, sizes.tokens, network.config["cross_attention_dim"], generator=g).to(device)
    steps = sizes.warmup + sizes.train_steps
    config = TrainConfig(steps=steps, lr=1e-5, autocast="bf16", progress_every=1, seed=seed)
    marks: list[float] = []
    dev.reset_peak(device)
    before = dev.allocated(device)
    state = train_x0_predictor(unet, lambda _step, _g: (x0, cond), config,
                               on_progress=lambda progress: marks.append(progress.elapsed_s))
    top = dev.peak(device)
    step_s = [b - a for a, b in itertools.pairwise(marks)][sizes.warmup - 1 :]
    median = statistics.median(step_s)
    losses = state.losses
    del unet, state
    dev.free(device)
    return {
        "module": network.name,
        "gradient_checkpointing": checkpointing,
        "autocast": "bf16",
        "batch": batch,
        "latent": f"{side}×{side}",
        "timed_steps": len(step_s),
        "step_ms": median * 1000.0,
        "samples_per_s": batch / median,
        "peak_mib": None if top is None else dev.mib(top - before),
        "loss_finite": all(torch.isfinite(torch.tensor(losses)).tolist()),
        "note": None if dev.is_cuda(device) else dev.NO_CPU_ALLOCATOR,
    }


def training_rows(sizes: Sizes, device: torch.device, seed: int) -> list[dict]:
    return [_one_variant(sizes.sd15, sizes, device, checkpointing, seed) for checkpointing in (False, True)]
