"""Per-prompt statistics of a brightness run: mean and spread of each arm, and the paired difference.

Both arms use the same seeds, so the difference is measured pair by pair: its standard error is the std of the
per-seed differences / √n, usually much smaller than the std of either arm (the seed's noise is shared).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Sequence

from sing_core.bench.protocol import Sample


@dataclasses.dataclass(frozen=True)
class PromptStats:
    prompt: str
    images: int  # seeds with both arms measured
    without_mean: float
    without_std: float  # sample std (n − 1); nan for one image
    with_mean: float
    with_std: float
    difference: float  # with − without, mean over seeds
    difference_se: float  # standard error of that mean; nan for one image
    expected: str  # "darker", "lighter" or "" (the paper's reading, from the prompt's words)

    @property
    def agrees(self) -> bool | None:
        """Whether the difference goes the paper's way; None where the prompt names no direction."""
        if self.expected == "darker":
            return self.difference < 0
        if self.expected == "lighter":
            return self.difference > 0
        return None


def expected_direction(prompt: str) -> str:
    """The paper: black prompts come out darker with the module, white ones lighter. Neither or both: no claim."""
    words = set(prompt.lower().replace("-", " ").replace(",", " ").split())
    dark, light = bool(words & {"black", "dark"}), bool(words & {"white", "light", "bright"})
    return "darker" if dark and not light else "lighter" if light and not dark else ""


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def prompt_stats(prompt: str, samples: Iterable[Sample]) -> PromptStats:
    by_seed: dict[int, dict[str, float]] = {}
    for sample in samples:
        if sample.prompt == prompt:
            by_seed.setdefault(sample.seed, {})[sample.arm] = sample.grey
    pairs = [(arms["without"], arms["with"]) for _, arms in sorted(by_seed.items()) if len(arms) == 2]
    if not pairs:
        raise ValueError(f"no seed of {prompt!r} has both a 'without' and a 'with' image")
    without = [w for w, _ in pairs]
    with_module = [m for _, m in pairs]
    differences = [m - w for w, m in pairs]
    return PromptStats(
        prompt=prompt,
        images=len(pairs),
        without_mean=statistics.fmean(without),
        without_std=_std(without),
        with_mean=statistics.fmean(with_module),
        with_std=_std(with_module),
        difference=statistics.fmean(differences),
        difference_se=_std(differences) / math.sqrt(len(pairs)),
        expected=expected_direction(prompt),
    )


def summarise(prompts: Sequence[str], samples: Sequence[Sample]) -> list[PromptStats]:
    return [prompt_stats(prompt, samples) for prompt in prompts]
