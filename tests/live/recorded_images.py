"""How a recorded image is compared with the same request answered by another webui build (another machine).

The same seed and settings give the same image up to the float kernels of the machine: a rebuilt host answered 3 of
12,288 values one grey level off its recording. So a recording passes where every value is within ±1 grey level and
at most MAX_OFF_SHARE of the values differ at all; a real change fails. What fails: any value 2 or more levels off,
or more than 1 % of the values off by one. A real change is far beyond both: on this tier's setup the module on
against off moves every pixel by about 33 levels (tests/live/test_bench_brightness.py: the tiny module's +1 of latent
mean), and a changed seed, sampler or size changes most values by many levels.
"""

from __future__ import annotations

import numpy as np

MAX_LEVEL_OFF = 1
MAX_OFF_SHARE = 0.01


def recording_mismatch(recorded: np.ndarray, answered: np.ndarray) -> str | None:
    """None where `answered` is `recorded` up to other float kernels; else what differs."""
    if recorded.shape != answered.shape:
        return f"shape {answered.shape} where the recording has {recorded.shape}"
    off = np.abs(recorded.astype(np.int16) - answered.astype(np.int16))
    worst, share = int(off.max(initial=0)), float((off > 0).mean()) if off.size else 0.0
    if worst > MAX_LEVEL_OFF:
        return f"a value {worst} grey levels off the recording (±{MAX_LEVEL_OFF} is the rounding of other kernels)"
    if share > MAX_OFF_SHARE:
        return f"{share:.1%} of the values one level off (more than {MAX_OFF_SHARE:.0%}: not rounding)"
    return None
