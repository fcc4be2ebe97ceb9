"""The demo's outputs: a table on stdout, brightness.csv and demo.png (sample grids and brightness charts)."""

from __future__ import annotations

import csv
from pathlib import Path

from sing_core.demo.experiment import SAMPLERS, DemoResult
from sing_core.plot import GREY, Canvas, bar_chart, text_width

CSV_HEADER = ("prompt", "guidance", "sampler", "true_mean", "without", "with")
GOAL_REDUCTION = 0.70  # the module must cut the w = 1 mean |error| by at least this much
DISPLAY_RANGE = (-1.6, 1.6)  # data brightness shown from black to white
GRID_SAMPLES = 4


def error_cut(result: DemoResult, sampler: str, guidance: float) -> float:
    without, with_module = result.mean_abs_error(sampler, guidance)
    return 1.0 - with_module / without if without > 0 else 0.0


def table(result: DemoResult) -> str:
    lines = [f"{'sampler':<8}{'w':>5}  {'prompt':<13}{'true':>8}{'without':>9}{'with':>8}"]
    lines += [
        f"{r.sampler:<8}{r.guidance:>5g}  {r.prompt:<13}{r.true_mean:>8.3f}{r.without:>9.3f}{r.with_module:>8.3f}"
        for r in result.rows
    ]
    lines += ["", "mean |brightness error| over the prompts:"]
    lines += [f"{'sampler':<8}{'w':>5}{'without':>9}{'with':>8}{'cut':>7}"]
    for sampler in SAMPLERS:
        for guidance in result.config.guidances:
            without, with_module = result.mean_abs_error(sampler, guidance)
            cut = error_cut(result, sampler, guidance)
            lines.append(f"{sampler:<8}{guidance:>5g}{without:>9.3f}{with_module:>8.3f}{cut:>7.0%}")
    return "\n".join(lines)


def goal_met(result: DemoResult) -> bool:
    """The demo's claim: without guidance (w = 1) the module cuts the mean |error| by ≥ 70% on every sampler."""
    return all(error_cut(result, sampler, 1.0) >= GOAL_REDUCTION for sampler in SAMPLERS)


def write_csv(result: DemoResult, path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for r in result.rows:
            values = (r.true_mean, r.without, r.with_module)
            writer.writerow([r.prompt, f"{r.guidance:g}", r.sampler, *(f"{v:.6f}" for v in values)])
    return path


def _grid_geometry(result: DemoResult) -> tuple[int, int, int, int]:
    """(thumbnail scale, thumbnail side, samples shown, width of one block of thumbnails plus its mean label)."""
    size = result.data.shape[1]
    scale = max(1, 64 // size)
    shown = min(GRID_SAMPLES, result.config.samples)
    return scale, size * scale, shown, shown * (size * scale + 4) + 76


def _sample_grid(canvas: Canvas, result: DemoResult, top: int, left: int) -> tuple[int, int]:
    """Rows of prompts; GRID_SAMPLES DDIM w = 1 samples without, then with the module (channel mean), each block
    followed by the mean brightness of all the prompt's samples. Returns the grid's bottom and right edges.
    """
    samples_without = result.samples[("ddim", 1.0, "without")]
    samples_with = result.samples[("ddim", 1.0, "with")]
    scale, thumb, shown, block_w = _grid_geometry(result)
    gap, label_w = 4, 150
    canvas.text(left, top, f"samples, ddim {result.config.steps} steps, w = 1 (same noise in both)", scale=2)
    top += 24
    x_without, x_with = left + label_w, left + label_w + block_w
    canvas.text(x_without, top, "without module: x1 as x_t0", color=GREY)
    canvas.text(x_with, top, "with module: ddim step from x0_hat", color=GREY)
    top += 14
    true_mean = result.data.true_mean()
    for p, prompt in enumerate(result.data.prompts):
        canvas.text(left, top + thumb / 2 - 10, prompt, scale=2)
        canvas.text(left, top + thumb / 2 + 8, f"true mean {true_mean[p].item():+.2f}", color=GREY)
        for x0, block in ((x_without, samples_without), (x_with, samples_with)):
            for i in range(shown):
                image = block[p, i].mean(0).tolist()  # channel mean: brightness plus the shared texture
                lo, hi = DISPLAY_RANGE
                canvas.grey_image(x0 + i * (thumb + gap), top, image, lo=lo, hi=hi, scale=scale)
            canvas.text(x0 + shown * (thumb + gap) + 4, top + thumb / 2 - 3, f"mean {block[p].mean().item():+.2f}")
        top += thumb + gap + 2
    return top, x_with + block_w


def _summary(canvas: Canvas, result: DemoResult, top: int, left: int) -> None:
    canvas.text(left, top, "mean |error| over prompts", scale=2)
    top += 26
    canvas.text(left, top, "sampler   w   without  with   cut", color=GREY)
    for sampler in SAMPLERS:
        for guidance in result.config.guidances:
            top += 14
            without, with_module = result.mean_abs_error(sampler, guidance)
            cut = error_cut(result, sampler, guidance)
            canvas.text(left, top, f"{sampler:<7}{guidance:>4g}{without:>9.3f}{with_module:>7.3f}{cut:>6.0%}")
    top += 24
    canvas.text(left, top, f"goal at w = 1: cut >= {GOAL_REDUCTION:.0%}: {'met' if goal_met(result) else 'not met'}")
    top += 14
    canvas.text(left, top, "brightness: mean latent value; data scale", color=GREY)


def render_png(result: DemoResult, path: Path) -> Path:
    chart_w, chart_h, margin = 390, 250, 16
    guidances = result.config.guidances
    _, thumb, _, block_w = _grid_geometry(result)
    summary_x = margin + 150 + 2 * block_w + 20
    summary_w = text_width("mean |error| over prompts", 2)
    width = max(2 * margin + chart_w * len(guidances), summary_x + summary_w + 2 * margin)
    grid_h = 38 + len(result.data.prompts) * (thumb + 6)
    height = margin + 30 + grid_h + 20 + len(SAMPLERS) * (chart_h + 10) + margin
    canvas = Canvas(width, height)
    title = "singdiffusion demo: the average-brightness problem of a gaussian start, and its fix"
    canvas.text(margin, margin, title, scale=2)
    top = margin + 30
    grid_bottom, _ = _sample_grid(canvas, result, top, margin)
    _summary(canvas, result, top, summary_x)
    top = grid_bottom + 20
    prompts = list(result.data.prompts)
    true_mean = result.data.true_mean().tolist()
    for sampler in SAMPLERS:
        for g, guidance in enumerate(guidances):
            rows = [r for r in result.rows if r.sampler == sampler and r.guidance == guidance]
            without, with_module = result.mean_abs_error(sampler, guidance)
            bar_chart(
                canvas,
                (margin + g * chart_w, top, chart_w - 24, chart_h),
                prompts,
                [("true", true_mean), ("without", [r.without for r in rows]), ("with", [r.with_module for r in rows])],
                title=f"{sampler} w = {guidance:g}: |error| {without:.3f} -> {with_module:.3f}",
                y_range=DISPLAY_RANGE,
            )
        top += chart_h + 10
    return canvas.save_png(path)
