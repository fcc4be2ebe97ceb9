"""The launch: one process or many through 🤗 accelerate, on the CPU (gloo) or GPUs (NCCL), with its mixed precision.

`python -m sing_core train` runs one process; `accelerate launch [--multi_gpu --num_processes N, --num_machines M,
--mixed_precision bf16, a config file …] -m sing_core train` and `torchrun --nproc_per_node N -m sing_core train`
start many, and Accelerator() reads the rank and world from their environment. Where no GPU is visible the trainer
asks accelerate for the CPU itself, which then joins the processes with gloo (accelerate's own `--cpu` launches one).

The loop (sing_core.train.loop) needs only the Parallel seam; AcceleratedParallel gives it: the DDP wrapper (by
accelerate's prepare_model), no_sync between micro-batches, means and per-rank rows gathered across processes.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch
from torch import nn

# our --dtype → accelerate's mixed_precision
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
AUTOCAST = {"no": None, "bf16": "bf16", "fp16": "fp16"}  # accelerate's → the loop's autocast


class LaunchError(ValueError):
    """A launch that cannot run as asked; the message names the flags that contradict each other."""


def launched_mixed_precision() -> str | None:
    """What `accelerate launch --mixed_precision` (or its config file) asked for, None outside accelerate launch."""
    value = os.environ.get("ACCELERATE_MIXED_PRECISION")
    return value.lower() if value else None


def choose_mixed_precision(dtype: str | None, launched: str | None) -> str:
    """accelerate's mixed_precision for this run: the launcher's or --dtype's; the two must agree where both are set."""
    if dtype is not None and dtype not in MIXED_PRECISION:
        raise LaunchError(f"--dtype {dtype}: choose one of {', '.join(MIXED_PRECISION)}")
    wanted = None if dtype is None else MIXED_PRECISION[dtype]
    if launched is not None and launched not in AUTOCAST:
        raise LaunchError(f"accelerate's mixed precision {launched!r}: this trainer runs 'no', 'bf16' or 'fp16'")
    if wanted is not None and launched is not None and wanted != launched:
        raise LaunchError(
            f"--dtype {dtype} contradicts the launcher's mixed precision {launched!r} (accelerate launch "
            "--mixed_precision or its config file); drop --dtype, or launch with the same precision"
        )
    return launched or wanted or "no"


def make_accelerator(device: str, dtype: str | None):
    """The Accelerator of this process: device 'auto' is a visible GPU, else the CPU; cpu asks for the CPU."""
    from accelerate import Accelerator

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise LaunchError(f"--device {device}: choose auto, cpu or cuda (the launcher picks the GPU of each process)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LaunchError(
            f"--device {device}: torch.cuda.is_available() is False (a CPU build of torch, or no visible GPU); use "
            "--device cpu or install a CUDA build of torch"
        )
    if device.startswith("cuda:"):  # one process on a chosen GPU; a launcher sets LOCAL_RANK's GPU itself
        torch.cuda.set_device(torch.device(device))
    cpu = device == "cpu" or not torch.cuda.is_available()
    precision = choose_mixed_precision(dtype, launched_mixed_precision())
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # accelerate keeps one state per interpreter and refuses another precision or device in a second run of the
        # same Python (tests, notebooks); one process has no process group to lose, so start it afresh.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    if launched_mixed_precision() is None:
        return Accelerator(cpu=cpu, mixed_precision=precision)
    return Accelerator(cpu=cpu)  # the launcher's setting stands (passing one again would override its config)


class AcceleratedParallel:
    """sing_core.train.loop.Parallel over an Accelerator."""

    def __init__(self, accelerator):
        self.accelerator = accelerator
        self.rank = accelerator.process_index
        self.world_size = accelerator.num_processes

    def wrap(self, model: nn.Module) -> nn.Module:
        # Many processes: DDP. One: the model itself (accelerate only wraps its forward in the same autocast the loop
        # applies). Either way prepare_model registers it, so accelerator.save_state writes its weights.
        return self.accelerator.prepare_model(model)

    def no_sync(self, wrapped: nn.Module):
        return wrapped.no_sync() if hasattr(wrapped, "no_sync") else nullcontext()

    def mean(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.accelerator.device)
        return self.accelerator.reduce(tensor, reduction="mean").item()

    def sum(self, value: int) -> int:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=self.accelerator.device)
        return int(self.accelerator.reduce(tensor, reduction="sum").item())

    def stack(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        import torch.distributed as dist

        # int64 on the wire: gloo and NCCL both gather it (RNG states are uint8)
        local = tensor.to(self.accelerator.device, torch.int64).contiguous()
        rows = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(rows, local)
        return torch.stack(rows).to("cpu", tensor.dtype)

    def gather_objects(self, values: list) -> list:
        if self.world_size == 1:
            return values
        from accelerate.utils import gather_object

        return gather_object(values)

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()
