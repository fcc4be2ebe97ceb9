"""The demo's outputs: a table on stdout, brightness.csv and demo.png (sample grids and brightness charts)."""

from __future__ import annotations

import csv
from pathlib import Path

from sing_core.demo.experiment import HALF_STRENGTH, SAMPLERS, DemoResult

CSV_HEADER = ("prompt", "guidance", "sampler", "true_mean", "without", "with", "strength")  # strength: of "with"
GOAL_REDUCTION = 0.70  # the module must cut the w = 1 mean |error| by at least this much
DISPLAY_RANGE = (-1.6, 1.6)  # data brightness shown from black to white
GRID_SAMPLES = 4


def error_cut(result: DemoResult, sampler: str, guidance: float, strength: float = 1.0) -> float:
    without, with_module = result.mean_abs_error(sampler, guidance, strength)
    return 1.0 - with_module / without if without > 0 else 0.0


def summary_keys(result: DemoResult) -> list[tuple[str, float, float]]:
    """(sampler, guidance, strength) of the summary's rows: every w at λ = 1, and w = 1 at λ = 0.5 after it."""
    keys = []
    for sampler in SAMPLERS:
        for guidance in result.config.guidances:
            keys.append((sampler, guidance, 1.0))
            if any(r.sampler == sampler and r.guidance == guidance for r in result.half_rows):
                keys.append((sampler, guidance, HALF_STRENGTH))
    return keys


def table(result: DemoResult) -> str:
    lines = [f"{'sampler':<8}{'w':>5}  {'prompt':<13}{'true':>8}{'without':>9}{'with':>8}"]
    lines += [
        f"{r.sampler:<8}{r.guidance:>5g}  {r.prompt:<13}{r.true_mean:>8.3f}{r.without:>9.3f}{r.with_module:>8.3f}"
        for r in result.rows
    ]
    lines += ["", "mean |brightness error| over the prompts (λ: the module's strength):"]
    lines += [f"{'sampler':<8}{'w':>5}{'λ':>5}{'without':>9}{'with':>8}{'cut':>7}"]
    for sampler, guidance, strength in summary_keys(result):
        without, with_module = result.mean_abs_error(sampler, guidance, strength)
        cut = error_cut(result, sampler, guidance, strength)
        lines.append(f"{sampler:<8}{guidance:>5g}{strength:>5g}{without:>9.3f}{with_module:>8.3f}{cut:>7.0%}")
    return "\n".join(lines)


def goal_met(result: DemoResult) -> bool:
    """The demo's claim: without guidance (w = 1) the module cuts the mean |error| by ≥ 70% on every sampler."""
    return all(error_cut(result, sampler, 1.0) >= GOAL_REDUCTION for sampler in SAMPLERS)


def write_csv(result: DemoResult, path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for strength, rows in ((1.0, result.rows), (HALF_STRENGTH, result.half_rows)):
            for r in rows:
                values = (f"{v:.6f}" for v in (r.true_mean, r.without, r.with_module))
                writer.writerow([r.prompt, f"{r.guidance:g}", r.sampler, *values, f"{strength:g}"])
    return path


# The figure's layout in inches: a fixed width; a row of sample panels per prompt, a row of charts per sampler.
FIGURE_WIDTH_IN = 12.0
HEADER_IN, SAMPLE_ROW_IN, CHART_ROW_IN = 0.95, 0.95, 3.0  # the headline takes two lines
DPI = 100
# In a webui user's words: the sampler's name, "CFG scale" for w, "strength" for λ, "brightness" for the latent mean.
SAMPLER_NAMES = {"ddim": "DDIM", "euler": "Euler"}
VARIANT_TITLES = {
    "without": "SingDiffusion off",
    "with": "SingDiffusion on (strength 1)",
    "half": f"SingDiffusion on, strength {HALF_STRENGTH:g}",
}
LABEL_WITHOUT, LABEL_WITH = "SingDiffusion off", "SingDiffusion on (strength 1)"
LABEL_HALF, LABEL_TRUE = f"SingDiffusion on, strength {HALF_STRENGTH:g}", "the prompt's true brightness"


def figure_size_in(result: DemoResult) -> tuple[float, float]:
    """(width, height) of demo.png in inches; the PNG is that times the DPI it is saved at."""
    height = HEADER_IN + len(result.data.prompts) * SAMPLE_ROW_IN + len(SAMPLERS) * CHART_ROW_IN
    return FIGURE_WIDTH_IN, height


def shown_variants(result: DemoResult) -> list[str]:
    """The sample columns of the figure: without, with, and the λ = 0.5 run when the result has it."""
    return [v for v in VARIANT_TITLES if ("ddim", 1.0, v) in result.samples]


def _sample_panels(figure, result: DemoResult) -> None:
    """Per prompt and variant: GRID_SAMPLES DDIM w = 1 samples (channel mean), the same noise in every column."""
    from sing_core.figures import image_panel

    variants = shown_variants(result)
    prompts = result.data.prompts
    true_mean = result.data.true_mean().tolist()
    axes = figure.subplots(len(prompts), len(variants), squeeze=False)
    lo, hi = DISPLAY_RANGE
    shown = min(GRID_SAMPLES, result.config.samples)
    for v, variant in enumerate(variants):
        block = result.samples[("ddim", 1.0, variant)]
        axes[0, v].set_title(VARIANT_TITLES[variant])
        for p, prompt in enumerate(prompts):
            ax = axes[p, v]
            image_panel(ax, [block[p, i].mean(0).numpy() for i in range(shown)], lo=lo, hi=hi)
            ax.set_xlabel(f"average of {block.shape[1]} images {block[p].mean().item():+.2f}", labelpad=2)
            if v == 0:
                ax.set_ylabel(f"{prompt}\ntrue {true_mean[p]:+.2f}", rotation=0, ha="right", va="center")
    figure.suptitle(f"{shown} images per prompt, DDIM {result.config.steps} steps, CFG scale 1, the same seeds in "
                    f"every column (grey level: the image's brightness, black {lo:g} … white {hi:g})", fontsize=10)


def _change(cut: float) -> str:
    return f"{cut:.0%} less" if cut >= 0 else f"{-cut:.0%} more"


def _chart_panels(figure, result: DemoResult) -> None:
    """Per sampler and guidance: each prompt's sample brightness against its true brightness (ideal: y = x)."""
    from sing_core.figures import COLORS

    guidances = result.config.guidances
    prompts = result.data.prompts
    true_mean = result.data.true_mean().tolist()
    axes = figure.subplots(len(SAMPLERS), len(guidances), squeeze=False, sharex=True, sharey=True)
    lo, hi = DISPLAY_RANGE
    for s, sampler in enumerate(SAMPLERS):
        for g, guidance in enumerate(guidances):
            ax = axes[s, g]
            rows = [r for r in result.rows if r.sampler == sampler and r.guidance == guidance]
            ax.plot([lo, hi], [lo, hi], "--", color=COLORS["true"], lw=1, label=LABEL_TRUE)
            ax.plot(true_mean, [r.with_module for r in rows], "s-", color=COLORS["with"], label=LABEL_WITH)
            halves = [r for r in result.half_rows if r.sampler == sampler and r.guidance == guidance]
            if halves:
                ax.plot(true_mean, [r.with_module for r in halves], "^:", color=COLORS["half"],
                        label=LABEL_HALF)
            # on top, hollow: visible where it coincides with the module's points (at high w)
            ax.plot(true_mean, [r.without for r in rows], "o-", color=COLORS["without"], mfc="none", mew=1.5,
                    label=LABEL_WITHOUT)
            without, with_module = result.mean_abs_error(sampler, guidance)
            note = (f"brightness error off {without:.3f} → on {with_module:.3f} "
                    f"({_change(error_cut(result, sampler, guidance))})")
            if halves:
                half = result.mean_abs_error(sampler, guidance, HALF_STRENGTH)[1]
                note += f"\nat strength {HALF_STRENGTH:g}: {half:.3f}"
            ax.set_title(f"{SAMPLER_NAMES[sampler]}, CFG scale {guidance:g}")
            ax.text(0.97, 0.04, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_xticks(true_mean, [name.replace(" ", "\n") for name in prompts], fontsize=8)
            if g == 0:
                ax.set_ylabel("image brightness (average)")
    figure.supxlabel("prompt, at its true brightness (on the dashed line: as bright as the prompt asks)", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] != LABEL_WITHOUT)  # "off" first, as in the panels
    axes[0, 0].legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left")


def headline(result: DemoResult) -> str:
    """The figure's title: what the panels show, true of this run's numbers (CFG's own overshoot included)."""
    darkest = min(range(len(result.data.prompts)), key=lambda p: result.data.true_mean()[p].item())
    prompt, strongest = result.data.prompts[darkest], max(result.config.guidances)
    rows = [r for r in result.rows if r.sampler == "ddim" and r.prompt == prompt]
    low, high = (next(r for r in rows if r.guidance == g) for g in (1.0, strongest))
    line = f'SingDiffusion off: "{prompt}" (true {low.true_mean:+.2f}) is {low.without:+.2f} at CFG 1 (too grey)'
    if high.without < high.true_mean:
        line += f", {high.without:+.2f} at CFG {strongest:g} (CFG overshoots)"
    else:
        line += f", {high.without:+.2f} at CFG {strongest:g}"
    return (f"{line}.\nSingDiffusion on: {low.with_module:+.2f} and {high.with_module:+.2f}. Synthetic data of known "
            "brightness, the same seeds everywhere.")


def render_png(result: DemoResult, path: Path, dpi: int = DPI) -> Path:
    """demo.png: the sample panels above, the brightness charts below; figure_size_in(result) × dpi pixels."""
    from sing_core.figures import new_figure, save_png, style

    width, height = figure_size_in(result)
    samples_in = len(result.data.prompts) * SAMPLE_ROW_IN + HEADER_IN / 2
    with style():
        figure = new_figure(width, height)
        figure.set_layout_engine("constrained")
        top, bottom = figure.subfigures(2, 1, height_ratios=[samples_in, height - samples_in])
        _sample_panels(top, result)
        _chart_panels(bottom, result)
        figure.suptitle(headline(result), fontsize=11, fontweight="bold")
        return save_png(figure, path, dpi)
