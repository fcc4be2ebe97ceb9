"""The whole check in one run: parity, speed, memory and training, each section's failure recorded without losing
the others (a GPU's minutes are few), then the verdicts."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import traceback
from collections.abc import Callable

import torch

from sing_core.gpucheck import device as dev
from sing_core.gpucheck.memory import forward_peak, release_rows
from sing_core.gpucheck.parity import parity_rows
from sing_core.gpucheck.report import verdicts
from sing_core.gpucheck.shapes import FULL, REHEARSAL, Sizes
from sing_core.gpucheck.speed import speed_rows
from sing_core.gpucheck.training import training_rows

SECTIONS = ("parity", "speed", "memory", "training")


class CheckError(RuntimeError):
    """The check cannot run as asked; the message says why and what to run instead."""


def resolve_device(name: str, rehearse: bool) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckError(
            "CUDA not available (torch.cuda.is_available() is False: a CPU build of torch or no visible GPU); "
            "rehearse on the CPU with --device cpu --rehearse"
        )
    if device.type == "cpu" and not rehearse:
        raise CheckError("--device cpu measures nothing a GPU check promises; add --rehearse (tiny sizes)")
    if device.type not in ("cpu", "cuda"):
        raise CheckError(f"--device {name}: the check knows cuda and cpu")
    return device


def _diffusers_version() -> str | None:
    """From the installed metadata: importing diffusers takes seconds (it loads torch._dynamo)."""
    try:
        return importlib.metadata.version("diffusers")
    except importlib.metadata.PackageNotFoundError:
        return None


def _memory(sizes: Sizes, device, dtype, seed: int) -> dict:
    return {
        "forward": [forward_peak(net, sizes.side, sizes.tokens, device, dtype, seed)
                    for net in (sizes.sd15, sizes.oms_b)],
        "release": release_rows(sizes.oms_b, sizes.side, sizes.tokens, device, dtype, seed),
    }


def run_check(
    device: torch.device,
    *,
    rehearse: bool,
    sections: tuple[str, ...] = SECTIONS,
    compile_row: bool = False,
    seed: int = 0,
    command: str = "",
    on_section: Callable[[str], None] | None = None,
) -> dict:
    sizes = REHEARSAL if rehearse else FULL
    cuda = dev.is_cuda(device)
    speed_dtype = torch.float16 if cuda else torch.float32  # CPU half convolutions are slow reference kernels
    memory_dtype = torch.float16 if cuda else torch.bfloat16
    report: dict = {
        "run": {
            "device": dev.describe(device),
            "torch": torch.__version__,
            "cuda": torch.version.cuda if cuda else None,
            "diffusers": _diffusers_version(),
            "mode": "rehearsal at tiny sizes" if rehearse else "full sizes",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "speed_dtype": str(speed_dtype).removeprefix("torch."),
            "sdpa": "torch.nn.functional.scaled_dot_product_attention (both sides)",
        },
        "errors": {},
    }
    work = {
        "parity": lambda: [row for net in (sizes.sd15, sizes.oms_b)
                           for row in parity_rows(net, sizes.side, sizes.tokens, device, seed)],
        "speed": lambda: speed_rows(sizes, device, speed_dtype, seed, compile_row),
        "memory": lambda: _memory(sizes, device, memory_dtype, seed),
        "training": lambda: training_rows(sizes, device, seed),
    }
    for section in SECTIONS:
        if section not in sections:
            continue
        if on_section is not None:
            on_section(section)
        try:
            report[section] = work[section]()
        except Exception as error:  # one failed section must not cost the others' figures
            report["errors"][section] = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
            dev.free(device)
    report["verdicts"] = verdicts(report)
    return report
