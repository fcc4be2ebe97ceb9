"""ComfyUI under load: 60 prompts with the pack applied, mixed samplers, schedulers, seeds and batch sizes, each run
twice (the repeat re-samples: its probe tag differs, so ComfyUI's cache cannot answer it). Every image must equal
its repeat's, and the server's resident memory must stay within 5 % of where it settled after the first 10 prompts.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from graphs import txt2img

pytestmark = pytest.mark.comfyui

PROMPTS = 60
SETTLED_AFTER = 10
RSS_TOLERANCE = 0.05
SAMPLERS = [("euler", "normal"), ("euler_ancestral", "karras"), ("dpmpp_2m", "karras"), ("ddim", "ddim_uniform"),
            ("uni_pc", "simple"), ("heun", "exponential")]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def soak_graph(i: int, tag: str) -> dict:
    sampler, scheduler = SAMPLERS[i % len(SAMPLERS)]
    return txt2img(sampler=sampler, scheduler=scheduler, seed=1000 + 7 * i, batch=1 + i % 2,
                   guidance_scale=(0.0, 3.0)[i % 3 == 0], probe=f"soak-{i}-{tag}")


def test_sixty_prompts_reproduce_and_memory_settles(comfy, comfy_server):
    pid = comfy_server.process.pid
    rss: list[int] = []
    mismatched = []
    for i in range(PROMPTS):
        images = []
        for tag in ("a", "b"):
            run = comfy.run(soak_graph(i, tag))
            assert run.succeeded, f"prompt {i} ({tag}): {run.failure}"
            images.append(comfy.images(run))
        if not all(np.array_equal(a, b) for a, b in itertools.zip_longest(*images)):
            mismatched.append(i)
        rss.append(resident_bytes(pid))
    assert not mismatched, f"prompts whose repeat gave another image: {mismatched}"
    settled = rss[SETTLED_AFTER - 1]
    worst = max(rss[SETTLED_AFTER:])
    assert worst <= settled * (1 + RSS_TOLERANCE), (
        f"resident memory grew from {settled / 2**20:.0f} MiB after {SETTLED_AFTER} prompts to "
        f"{worst / 2**20:.0f} MiB: {[round(r / 2**20) for r in rss]}")
    print(f"RSS MiB: settled {settled / 2**20:.0f}, max after {worst / 2**20:.0f}, last {rss[-1] / 2**20:.0f}")
