"""The paper's average-brightness protocol against a running webui: same seeds with and without SingDiffusion.

For every prompt and every seed, one image is generated without the module and one with it, from the same seed
(so the same Gaussian noise). Requests are interleaved (prompt by prompt, seed batch by seed batch, and the order of
the two arms alternates) so that drift of the server (thermal throttling, other users) affects both arms alike.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from sing_core.bench.client import BenchError, WebuiApi

PAPER_PROMPTS = (
    "solid black background",
    "solid white background",
    "Monochrome line-art logo on a black background",
    "Monochrome line-art logo on a white background",
)
ARMS = ("without", "with")
SCRIPT_TITLE = "SingDiffusion"
THUMBNAIL_PX = 96  # the longest side of the images the chart shows


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    prompts: tuple[str, ...] = PAPER_PROMPTS
    seeds: int = 10
    seed_start: int = 0
    steps: int = 50
    cfg_scale: float = 7.5
    sampler: str = "DDIM"
    scheduler: str | None = None  # None: the webui's choice for the sampler ("Automatic")
    width: int = 512
    height: int = 512
    batch_size: int = 1
    module: str = ""  # resolved before the run (see preflight); "" is the extension's default
    module_guidance: float = 0.0  # 0 follows cfg_scale, as in the extension
    text_source: str = "auto"
    negative_prompt: str = ""

    def check(self) -> None:
        problems = []
        if not self.prompts:
            problems.append("no prompts")
        for name, value, low in (("--seeds", self.seeds, 1), ("--steps", self.steps, 1),
                                 ("--batch-size", self.batch_size, 1), ("--width", self.width, 64),
                                 ("--height", self.height, 64)):
            if value < low:
                problems.append(f"{name} {value} is too small (at least {low})")
        for name, value in (("--width", self.width), ("--height", self.height)):
            if value % 8:
                problems.append(f"{name} {value} is not a multiple of 8 (the latent is 1/8 of the image)")
        if self.cfg_scale < 1:
            problems.append(f"--cfg {self.cfg_scale:g} is below 1")
        if not 0 <= self.module_guidance <= 30:
            problems.append(f"--module-guidance {self.module_guidance:g} is outside 0 … 30 (0 follows --cfg)")
        if problems:
            raise BenchError("bench brightness: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Job:
    """One txt2img request: `seeds` consecutive seeds of one prompt, in one arm."""

    prompt: str
    arm: str  # "without" or "with"
    seeds: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Sample:
    prompt: str
    arm: str
    seed: int
    grey: float  # mean grey level 0..255
    module_label: str | None  # "name [hash]" from the infotext; None without the module
    thumbnail: Any = dataclasses.field(default=None, compare=False, repr=False)  # a small PIL image, for the chart


def read_image(data: bytes, warn: Callable[[str], None] | None = None):
    """One image of the webui's answer as an RGB PIL image (alpha dropped: the webui's images are opaque).

    PNG is exact. JPEG and WebP (the webui's "File format for images" setting, which its API also uses) are read
    with a warning, since lossy compression shifts grey levels.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            kind = opened.format
            image = opened.convert("RGB")  # decodes the whole file: a truncated one fails here
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise BenchError(f"the webui sent an image that Pillow cannot read ({error}; it starts with {data[:12]!r}); "
                         "set Settings > Saving images/grids > File format for images to png") from None
    if kind != "PNG" and warn:
        warn(f"the webui sends {kind} images (lossy; set Settings > Saving images/grids > File format for images to "
             "png for exact grey levels)")
    return image


def mean_grey(image) -> float:
    """Mean of R, G and B over all pixels, on 0..255: the average-brightness reading of the paper's protocol."""
    import numpy as np

    pixels = np.asarray(image, dtype=np.uint8)
    return int(pixels.sum(dtype=np.int64)) / pixels.size if pixels.size else 0.0  # an exact integer sum, one division


def seed_batches(settings: BenchSettings) -> list[tuple[int, ...]]:
    seeds = range(settings.seed_start, settings.seed_start + settings.seeds)
    return [tuple(seeds[i : i + settings.batch_size]) for i in range(0, settings.seeds, settings.batch_size)]


def plan_jobs(settings: BenchSettings) -> list[Job]:
    """Seed batch by seed batch, prompt by prompt, both arms; the arm that goes first alternates pair by pair."""
    jobs, pair = [], 0
    for seeds in seed_batches(settings):
        for prompt in settings.prompts:
            arms = ARMS if pair % 2 == 0 else ARMS[::-1]
            jobs += [Job(prompt, arm, seeds) for arm in arms]
            pair += 1
    return jobs


def script_args(settings: BenchSettings, arm: str) -> dict:
    """alwayson_scripts for one arm. Both arms send explicit values with follow_preset off: a request WITHOUT
    SingDiffusion args would take a per-checkpoint preset, which may enable the module in the baseline. With no
    preset saved, "enabled": false gives images bit-identical to sending no args (checked in the live tier)."""
    if arm == "without":
        args = {"enabled": False, "follow_preset": False}
    else:
        args = {"enabled": True, "module": settings.module, "guidance_scale": settings.module_guidance,
                "text_source": settings.text_source, "follow_preset": False}
    return {SCRIPT_TITLE: {"args": [args]}}


def payload(settings: BenchSettings, job: Job) -> dict:
    body = {
        "prompt": job.prompt,
        "negative_prompt": settings.negative_prompt,
        "seed": job.seeds[0],
        "subseed_strength": 0,
        "batch_size": len(job.seeds),
        "n_iter": 1,
        "steps": settings.steps,
        "cfg_scale": settings.cfg_scale,
        "width": settings.width,
        "height": settings.height,
        "sampler_name": settings.sampler,
        "send_images": True,
        "save_images": False,
        "alwayson_scripts": script_args(settings, job.arm),
    }
    if settings.scheduler:
        body["scheduler"] = settings.scheduler
    return body


# The infotext's last line is "Key: value, Key: value, …"; a value holding a comma is JSON-quoted by the webui.
_MODULE_FIELD = re.compile(r'(?:^|, )SingDiffusion: ("(?:[^"\\]|\\.)*"|[^,]*)')


def module_label(infotext: str) -> str | None:
    """The "SingDiffusion: name [hash]" value of an infotext, or None when the module did not run."""
    found = _MODULE_FIELD.search(infotext.strip().splitlines()[-1] if infotext.strip() else "")
    if found is None:
        return None
    value = found.group(1).strip()
    return json.loads(value) if value.startswith('"') else value


def parse_response(job: Job, answer: dict, decode_warn: Callable[[str], None] | None = None) -> list[Sample]:
    """Samples from a txt2img answer; checks that the seeds and the module's presence are what was asked."""
    try:
        images = answer["images"]
        info = json.loads(answer["info"]) if isinstance(answer.get("info"), str) else (answer.get("info") or {})
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise BenchError(f"the webui's txt2img answer is not the v1 API's shape ({error}); is --url an A1111 "
                         "webui (v1.6 or later)?") from None
    first = int(info.get("index_of_first_image", 0))  # a grid, when the webui adds one, comes first
    images = images[first : first + len(job.seeds)]
    if len(images) != len(job.seeds):
        raise BenchError(f"asked for {len(job.seeds)} images of {job.prompt!r}, the webui returned {len(images)}")
    seeds = info.get("all_seeds") or list(job.seeds)
    infotexts = info.get("infotexts") or [""] * len(images)
    samples = []
    for i, (image, seed) in enumerate(zip(images, seeds[: len(images)], strict=True)):
        if seed != job.seeds[i]:
            raise BenchError(f"asked for seed {job.seeds[i]}, the webui used {seed}: the same seed must be used with "
                             "and without the module; is a script or extension changing seeds?")
        label = module_label(infotexts[i] if i < len(infotexts) else "")
        if job.arm == "with" and label is None:
            raise BenchError(f"image of {job.prompt!r} seed {seed} was generated with SingDiffusion enabled, but its "
                             "infotext does not name a module, so the module did not run: see the webui's console")
        if job.arm == "without" and label is not None:
            raise BenchError(f"image of {job.prompt!r} seed {seed} was asked for without SingDiffusion, but the "
                             f"module {label} ran: is an older extension version ignoring 'enabled': false?")
        decoded = read_image(base64.b64decode(image), warn=decode_warn)
        thumbnail = decoded.copy()
        thumbnail.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        samples.append(Sample(job.prompt, job.arm, seed, mean_grey(decoded), label, thumbnail))
    return samples


@dataclasses.dataclass
class BenchRun:
    settings: BenchSettings
    samples: list[Sample] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    planned_images: int = 0

    @property
    def complete(self) -> bool:
        return len(self.samples) == self.planned_images

    def module_labels(self) -> list[str]:
        return sorted({s.module_label for s in self.samples if s.module_label})

    def thumbnails(self, prompt: str) -> tuple[Any, Any] | None:
        """The images (without, with) of the prompt's lowest seed measured in both arms, or None."""
        found = {(s.seed, s.arm): s.thumbnail for s in self.samples if s.prompt == prompt and s.thumbnail is not None}
        seeds = sorted(seed for seed, arm in found if arm == "without" and (seed, "with") in found)
        return (found[(seeds[0], "without")], found[(seeds[0], "with")]) if seeds else None

    def measured_prompts(self) -> list[str]:
        """Prompts, in the settings' order, with at least one seed measured in both arms."""
        arms: dict[tuple[str, int], set[str]] = {}
        for s in self.samples:
            arms.setdefault((s.prompt, s.seed), set()).add(s.arm)
        paired = {prompt for (prompt, _), found in arms.items() if len(found) == 2}
        return [prompt for prompt in self.settings.prompts if prompt in paired]


def run_bench(
    api: WebuiApi,
    settings: BenchSettings,
    *,
    progress: Callable[[int, int, Job], None] | None = None,
    warn: Callable[[str], None] | None = None,
    jobs: Sequence[Job] | None = None,
    into: BenchRun | None = None,
) -> BenchRun:
    """Sends every job and reads the grey levels. progress(done_images, total_images, job) is called after each.

    Samples are added to `into` (a new BenchRun by default) as they come, so a caller that catches a failure or an
    interrupt midway still holds every image measured so far.
    """
    jobs = list(plan_jobs(settings) if jobs is None else jobs)
    run = into if into is not None else BenchRun(settings)
    run.planned_images = sum(len(job.seeds) for job in jobs)
    started = time.perf_counter() - run.seconds
    for job in jobs:
        answer: Any = api.post("/sdapi/v1/txt2img", payload(settings, job))
        run.samples += parse_response(job, answer, warn)
        run.seconds = time.perf_counter() - started
        if progress:
            progress(len(run.samples), run.planned_images, job)
    return run
