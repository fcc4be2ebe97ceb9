"""Outputs of the brightness bench: a table on stdout, two CSVs, a bar chart PNG and the run's settings as JSON.

bench_brightness.csv, one row per prompt (grey levels on 0..255):
    prompt          the prompt
    images          seeds measured in both arms
    without_mean    mean grey level without SingDiffusion      without_std   its sample std over the seeds
    with_mean       mean grey level with SingDiffusion         with_std      its sample std over the seeds
    difference      with − without, mean over seeds            difference_se its standard error (paired by seed)
    expected        the paper's reading for the prompt: darker (black prompts), lighter (white prompts) or empty
    agrees          yes / no: the difference has the expected sign; empty when nothing is expected
bench_brightness_images.csv, one row per prompt and seed: prompt, seed, without, with (grey levels).
bench_brightness.png: the mean grey level per prompt without and with (±1 std over the seeds), and each prompt's
images of its first seed without and with, drawn with matplotlib.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from sing_core.bench.protocol import BenchRun
from sing_core.bench.stats import PromptStats

SUMMARY_HEADER = ("prompt", "images", "without_mean", "without_std", "with_mean", "with_std", "difference",
                  "difference_se", "expected", "agrees")
IMAGES_HEADER = ("prompt", "seed", "without", "with")
FILES = {"summary": "bench_brightness.csv", "images": "bench_brightness_images.csv",
         "chart": "bench_brightness.png", "settings": "bench_brightness.json"}


def _num(value: float, spec: str = ".2f") -> str:
    return "" if math.isnan(value) else format(value, spec)


def _agrees(row: PromptStats) -> str:
    return {True: "yes", False: "no", None: ""}[row.agrees]


def table(rows: Sequence[PromptStats]) -> str:
    width = max(len("prompt"), *(len(r.prompt) for r in rows))
    lines = [f"{'prompt':<{width}}  {'n':>4}  {'without':>14}  {'with':>14}  {'with - without':>16}  expected",
             f"{'':<{width}}  {'':>4}  {'mean ± std':>14}  {'mean ± std':>14}  {'mean ± se':>16}"]
    for r in rows:
        without = f"{r.without_mean:6.1f} ± {_num(r.without_std, '5.1f') or '-':>5}"
        with_module = f"{r.with_mean:6.1f} ± {_num(r.with_std, '5.1f') or '-':>5}"
        difference = f"{r.difference:+7.2f} ± {_num(r.difference_se, '6.2f') or '-':>6}"
        verdict = f"{r.expected} ({_agrees(r)})" if r.expected else ""
        lines.append(f"{r.prompt:<{width}}  {r.images:>4}  {without:>14}  {with_module:>14}  {difference:>16}  "
                     f"{verdict}")
    judged = [r for r in rows if r.agrees is not None]
    if judged:
        agreeing = sum(bool(r.agrees) for r in judged)
        reading = "the paper's reading (black prompts darker, white prompts lighter with the module)"
        lines += ["", f"{reading}: {agreeing} of {len(judged)} prompts agree"]
    return "\n".join(lines)


def write_summary_csv(rows: Sequence[PromptStats], path: Path) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(SUMMARY_HEADER)
        for r in rows:
            writer.writerow([r.prompt, r.images, _num(r.without_mean, ".3f"), _num(r.without_std, ".3f"),
                             _num(r.with_mean, ".3f"), _num(r.with_std, ".3f"), _num(r.difference, ".3f"),
                             _num(r.difference_se, ".3f"), r.expected, _agrees(r)])
    return path


def write_images_csv(run: BenchRun, path: Path) -> Path:
    grey = {(s.prompt, s.seed, s.arm): s.grey for s in run.samples}
    keys = sorted({(s.prompt, s.seed) for s in run.samples}, key=lambda k: (run.settings.prompts.index(k[0]), k[1]))
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(IMAGES_HEADER)
        for prompt, seed in keys:
            writer.writerow([prompt, seed, *(_num(grey.get((prompt, seed, arm), math.nan), ".3f")
                                             for arm in ("without", "with"))])
    return path


def write_settings_json(run: BenchRun, url: str, extra: dict, path: Path) -> Path:
    record = {"url": url, "settings": dataclasses.asdict(run.settings), "module_labels": run.module_labels(),
              "seconds": round(run.seconds, 3), **extra}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


CHART_HEIGHT_IN, IMAGES_HEIGHT_IN, PROMPT_WIDTH_IN, MIN_WIDTH_IN = 3.8, 2.2, 2.4, 8.0
DPI = 100


def chart_size_in(prompts: int) -> tuple[float, float]:
    """(width, height) of bench_brightness.png in inches: a column per prompt, the bars above, the images below."""
    return max(MIN_WIDTH_IN, PROMPT_WIDTH_IN * prompts), CHART_HEIGHT_IN + IMAGES_HEIGHT_IN


def _bars(ax, rows: Sequence[PromptStats]) -> None:
    import numpy as np

    from sing_core.figures import COLORS

    x = np.arange(len(rows))
    for offset, arm, label in ((-0.2, "without", "without SingDiffusion"), (0.2, "with", "with SingDiffusion")):
        means = [getattr(r, f"{arm}_mean") for r in rows]
        stds = [0.0 if math.isnan(getattr(r, f"{arm}_std")) else getattr(r, f"{arm}_std") for r in rows]
        ax.bar(x + offset, means, 0.4, yerr=stds, capsize=3, color=COLORS[arm], label=label,
               error_kw={"elinewidth": 1})
    for i, r in enumerate(rows):
        se = "" if math.isnan(r.difference_se) else f" ± {r.difference_se:.1f}"
        expected = f"\nexpected {r.expected} ({_agrees(r)})" if r.expected else ""
        ax.annotate(f"with − without {r.difference:+.1f}{se}{expected}", (i, 255), ha="center", va="top", fontsize=8)
    ax.set_xticks(x, [textwrap.fill(r.prompt, 26) for r in rows], fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(0, 255)
    ax.set_ylabel("mean grey level (0 black … 255 white)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2)


def render_chart(rows: Sequence[PromptStats], title: str, path: Path, thumbnails: Mapping[str, tuple] | None = None,
                 dpi: int = DPI) -> Path:
    """The bars (mean ± 1 std over the seeds, per prompt and arm) and, for each prompt in `thumbnails`, its images
    (without, with) side by side. chart_size_in(len(rows)) × dpi pixels."""
    import numpy as np

    from sing_core.figures import image_panel, new_figure, save_png, style

    thumbnails = thumbnails or {}
    width, height = chart_size_in(len(rows))
    with style():
        figure = new_figure(width, height)
        figure.set_layout_engine("constrained")
        top, bottom = figure.subfigures(2, 1, height_ratios=[CHART_HEIGHT_IN, IMAGES_HEIGHT_IN])
        _bars(top.subplots(), rows)
        top.suptitle(textwrap.fill(title, 130), fontsize=10)
        shown = [r.prompt for r in rows if r.prompt in thumbnails]
        if shown:
            for ax, prompt in zip(bottom.subplots(1, len(shown), squeeze=False)[0], shown, strict=True):
                image_panel(ax, [np.asarray(image) for image in thumbnails[prompt]])
                ax.set_title(textwrap.fill(prompt, 30), fontsize=8)
                ax.set_xlabel("without   |   with", fontsize=8)
            bottom.suptitle("first seed, without and with SingDiffusion (same seed, same noise)", fontsize=9)
        return save_png(figure, path, dpi)
