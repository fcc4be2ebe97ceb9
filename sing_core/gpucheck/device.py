"""Timing and memory on the device under test: CUDA events and the caching allocator's counters on a GPU, the wall
clock on the CPU (where the allocator keeps no counters, the memory figures are None and the report says why)."""

from __future__ import annotations

import contextlib
import gc
import platform
import time
from collections.abc import Callable, Iterator

import torch

NO_CPU_ALLOCATOR = "not measured on the CPU (no allocator counters; `bench unet` measures RSS there)"


def is_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def synchronize(device: torch.device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device) -> float:
    """One call's time in ms: CUDA events around it on a GPU (its kernels, not the launch), the wall clock on a CPU."""
    if is_cuda(device):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def allocated(device: torch.device) -> int | None:
    """Bytes the caching allocator has handed out (None on the CPU)."""
    if not is_cuda(device):
        return None
    synchronize(device)
    return torch.cuda.memory_allocated(device)


def reset_peak(device: torch.device) -> None:
    if is_cuda(device):
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak(device: torch.device) -> int | None:
    if not is_cuda(device):
        return None
    synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def free(device: torch.device) -> None:
    """The allocator's cached blocks back to the driver between sections (what is deleted is freed by refcount)."""
    if is_cuda(device):
        synchronize(device)
        torch.cuda.empty_cache()


def collect(device: torch.device) -> None:
    """What the webuis' torch_gc does: Python's garbage first (seconds with diffusers imported: only where a cycle
    could hide a module), then the allocator's cached blocks."""
    gc.collect()
    if is_cuda(device):
        synchronize(device)
        torch.cuda.empty_cache()


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """float32 without TF32 (cuDNN convolutions use TF32 by default on Ampere and later): the parity reference."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def describe(device: torch.device) -> str:
    if is_cuda(device):
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs)"
    return f"CPU {platform.machine()} ({torch.get_num_threads()} torch threads)"


def mib(value: int | None) -> float | None:
    return None if value is None else value / 2**20
