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
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

from sing_core.bench.protocol import BenchRun
from sing_core.bench.stats import PromptStats
from sing_core.plot import BLACK, GLYPHS, PALETTE, Canvas, bar_chart, text_width

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


def _label(text: str) -> str:
    """Text the plot font can draw: brackets become parentheses, other characters it lacks become '?'."""
    text = text.replace("[", "(").replace("]", ")")
    return "".join(c if c.upper() in GLYPHS else "?" for c in text)


def render_chart(rows: Sequence[PromptStats], title: str, path: Path) -> Path:
    """Grouped bars (without, with) per prompt on 0..255, each with a ±1 std whisker (black)."""
    margin, scale = 16, 2
    title = _label(title)
    width = max(720, 200 * len(rows) + 2 * margin, text_width(title, scale) + 2 * margin)
    canvas = Canvas(width, 480)
    box = (margin, margin, width - 2 * margin, 480 - 2 * margin)
    series = [("without", [r.without_mean for r in rows]), ("with singdiffusion", [r.with_mean for r in rows])]
    bars = bar_chart(canvas, box, [_label(r.prompt) for r in rows], series, title=title, y_range=(0, 255),
                     colors=(PALETTE[2], PALETTE[1]), scale=scale)
    # pixels per grey level, from the tallest bar (bars grow from the zero line: rect height = mean · scale)
    (_, _, _, tallest_h), tallest_mean = max(
        ((rect, rows[c].without_mean if s == 0 else rows[c].with_mean) for (c, s), rect in bars.items()),
        key=lambda item: item[1],
    )
    per_level = tallest_h / tallest_mean if tallest_mean > 0 else 0.0
    for (c, s), (x, y, w, h) in bars.items():
        std = rows[c].without_std if s == 0 else rows[c].with_std
        if per_level == 0 or math.isnan(std) or std == 0:
            continue
        zero_y = y + h
        centre = x + w // 2
        top = max(zero_y - 255 * per_level, y - std * per_level)
        bottom = min(zero_y, y + std * per_level)
        canvas.fill_rect(centre, top, 1, bottom - top + 1, BLACK)
        canvas.fill_rect(centre - 3, top, 7, 1, BLACK)
        canvas.fill_rect(centre - 3, bottom, 7, 1, BLACK)
    return canvas.save_png(path)
