"""`python -m sing_core demo` at reduced size: the effect's direction and size, its outputs, its reproducibility."""

import csv
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from figure_check import is_blank, panels, read_png

from sing_core.cli import main
from sing_core.demo import report
from sing_core.demo.data import PROMPTS, make_mixture
from sing_core.demo.experiment import SAMPLERS, DemoConfig, module_x0, run_demo, train_module
from sing_core.figures import COLORS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The demo as a user runs it: its own process, its console captured."""
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run([sys.executable, "-m", "sing_core", "demo", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    return done, out


def test_the_console_shows_the_table_and_no_warning(quick_run):
    done, out = quick_run
    assert done.returncode == 0, done.stderr
    assert "mean |brightness error| over the prompts (λ: the module's strength):" in done.stdout
    assert f"wrote {out / 'brightness.csv'} and {out / 'demo.png'}" in done.stdout
    assert "  run 14/14: euler, CFG scale 7.5, module on, strength 1" in done.stdout  # progress while sampling
    # nothing else: no library warning (torch's "Failed to initialize NumPy", matplotlib's missing glyphs, …)
    assert done.stderr == ""
    assert "warn" not in done.stdout.lower()


def read_rows(out):
    with (out / "brightness.csv").open() as handle:
        return list(csv.reader(handle))


def test_demo_exits_cleanly_and_writes_the_csv_with_the_exact_header(quick_run):
    done, out = quick_run
    assert done.returncode == 0
    rows = read_rows(out)
    assert rows[0] == ["prompt", "guidance", "sampler", "true_mean", "without", "with", "strength"]
    assert len(rows) == 1 + 5 * 3 * 2 + 5 * 2  # prompts × guidances × samplers at λ = 1, then w = 1 at λ = 0.5
    assert {(r[1], r[2], r[6]) for r in rows[1:]} == {
        *((g, s, "1") for g in ("1", "3", "7.5") for s in ("ddim", "euler")),
        *(("1", s, "0.5") for s in ("ddim", "euler")),
    }


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_gaussian_start_misses_the_brightness_and_the_module_fixes_it(quick_run, sampler):
    _, out = quick_run
    rows = [r for r in read_rows(out)[1:] if r[1] == "1" and r[2] == sampler and r[6] == "1"]
    true_mean = [float(r[3]) for r in rows]
    without = [float(r[4]) for r in rows]
    with_module = [float(r[5]) for r in rows]
    error_without = sum(abs(w - t) for w, t in zip(without, true_mean, strict=True)) / len(rows)
    error_with = sum(abs(w - t) for w, t in zip(with_module, true_mean, strict=True)) / len(rows)
    assert error_without > 0.15  # pure noise reads as mid grey: dark prompts come out lighter, light ones darker
    assert error_with <= 0.3 * error_without  # the demo's goal: a ≥ 70% cut
    black, white = rows[0], rows[-1]
    assert float(black[4]) > float(black[3]) + 0.2
    assert float(white[4]) < float(white[3]) - 0.2


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_half_strength_lands_between_the_plain_start_and_the_full_one(quick_run, sampler):
    """λ interpolates: at w = 1 and λ = 0.5 the dark prompts come out between their brightness without the module
    and with it at λ = 1, and so does the light ones'; the error is in between too."""
    _, out = quick_run
    rows = [r for r in read_rows(out)[1:] if r[1] == "1" and r[2] == sampler]
    full = {r[0]: r for r in rows if r[6] == "1"}
    half = {r[0]: r for r in rows if r[6] == "0.5"}
    assert full.keys() == half.keys() == set(PROMPTS)
    for prompt in ("pitch black", "dark grey", "light grey", "white"):
        without, with_full, with_half = float(full[prompt][4]), float(full[prompt][5]), float(half[prompt][5])
        assert float(half[prompt][4]) == without  # the same baseline row
        assert min(without, with_full) < with_half < max(without, with_full), prompt

    def error(table, column):
        return sum(abs(float(r[column]) - float(r[3])) for r in table.values()) / len(table)

    assert error(full, 5) < error(half, 5) < error(full, 4)


def expected_panels(prompts: int, variants: int, samplers: int, guidances: int) -> int:
    """A row of sample panels (one per variant) for each prompt, a row of charts (one per guidance) per sampler."""
    return prompts * variants + samplers * guidances


def colour_count(pixels: np.ndarray, hex_colour: str, tolerance: int = 40) -> int:
    """Pixels within `tolerance` of the colour in every channel (anti-aliased lines blend into the background)."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(int) - rgb).max(axis=-1) <= tolerance).sum())


def test_the_png_is_the_figure_the_demo_draws(quick_run):
    _, out = quick_run
    pixels = read_png(out / "demo.png")
    # asked: 5 prompts and 2 samplers at the default 100 dpi, on a 12-inch-wide page
    height_in = report.HEADER_IN + len(PROMPTS) * report.SAMPLE_ROW_IN + len(SAMPLERS) * report.CHART_ROW_IN
    assert pixels.shape == (round(100 * height_in), 1200, 3)
    assert not is_blank(pixels)
    found = panels(pixels)
    # sample columns: without, with, with at λ = 0.5
    assert len(found) == expected_panels(len(PROMPTS), 3, len(SAMPLERS), 3), found
    samples, charts = found[: 3 * len(PROMPTS)], found[3 * len(PROMPTS) :]
    for top, left, bottom, right in samples:  # grey thumbnails: many grey levels, no colour
        tile = pixels[top:bottom, left:right].astype(int)
        grey = (tile[..., 0] == tile[..., 1]) & (tile[..., 1] == tile[..., 2])
        assert grey.mean() > 0.5
        assert len(np.unique(tile[grey][:, 0])) > 20
    for top, left, bottom, right in charts:  # every chart draws both series
        chart = pixels[top:bottom, left:right]
        assert colour_count(chart, COLORS["without"]) > 100
        assert colour_count(chart, COLORS["with"]) > 100


def test_the_figure_follows_the_experiment_and_the_dpi(tmp_path):
    config = DemoConfig(size=4, samples=2, train_steps=5, batch_size=8, guidances=(1.0, 3.0), steps=5)
    result = run_demo(config, log=lambda _: None)
    path = report.render_png(result, tmp_path / "small.png", dpi=40)
    pixels = read_png(path)
    width_in, height_in = report.figure_size_in(result)
    assert width_in == report.FIGURE_WIDTH_IN
    assert pixels.shape == (round(40 * height_in), round(40 * width_in), 3)
    assert len(panels(pixels)) == expected_panels(len(PROMPTS), 3, len(SAMPLERS), 2)


def test_demo_is_reproducible():
    config = DemoConfig(size=4, samples=2, train_steps=5, batch_size=8, guidances=(1.0, 3.0), steps=5)
    first, second = run_demo(config, log=lambda _: None), run_demo(config, log=lambda _: None)
    assert first.rows == second.rows
    for key, samples in first.samples.items():
        assert torch.equal(samples, second.samples[key]), key
    other_seed = run_demo(replace(config, seed=1), log=lambda _: None)
    assert other_seed.rows != first.rows


def test_trained_module_predicts_the_conditional_mean():
    data = make_mixture(size=8)
    config = DemoConfig(size=8, train_steps=300)
    net, encoder, state = train_module(data, config)
    assert sum(state.losses[-20:]) < 0.5 * sum(state.losses[:20])
    x1 = torch.randn(5 * 64, *data.shape, generator=torch.Generator().manual_seed(9))
    prompt_index = torch.arange(5).repeat_interleave(64)
    x0_hat = module_x0(net, encoder, x1, prompt_index, 1.0).reshape(5, 64, -1)
    # E[x0 | c] is the constant image at the prompt's mean brightness; the optimum ignores x1
    expected = data.true_mean()[:, None, None]
    assert (x0_hat.mean(dim=(1, 2)) - data.true_mean()).abs().max() < 0.03
    assert (x0_hat - expected).abs().mean() < 0.05
    # and the unconditional prediction (caption dropout) is E[x0] = the mean over prompts, mid grey
    x0_uncond = net(x1, encoder(torch.full_like(prompt_index, encoder.uncond_index))).detach()
    assert x0_uncond.mean().item() == pytest.approx(data.true_mean().mean().item(), abs=0.05)
    # before training the prediction is nowhere near: the test can fail
    torch.manual_seed(0)
    untrained = type(net)(data.shape[0], encoder.dim)
    x0_untrained = untrained(x1, encoder(prompt_index)).detach().reshape(5, 64, -1)
    assert (x0_untrained - expected).abs().mean() > 0.3


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--samples", "0"], "--samples 0 is too small"), (["--steps", "0"], "--steps 0 is out of range")],
)
def test_bad_arguments_are_named(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        main(["demo", "--out", str(tmp_path), *argv])


def test_the_headline_says_what_this_runs_numbers_show():
    config = DemoConfig(size=4, samples=2, train_steps=5, batch_size=8, guidances=(1.0, 7.5), steps=5)
    result = run_demo(config, log=lambda _: None)
    black = [r for r in result.rows if r.sampler == "ddim" and r.prompt == PROMPTS[0]]
    low, high = black
    headline = report.headline(result)
    assert f'"{PROMPTS[0]}" (true {low.true_mean:+.2f}) is {low.without:+.2f} at CFG 1' in headline
    assert f"SingDiffusion on: {low.with_module:+.2f} and {high.with_module:+.2f}" in headline
    assert max(len(line) for line in headline.splitlines()) <= 110  # fits the figure's width
    overshoot = replace(result, rows=[replace(r, without=r.true_mean - 0.2) if r in black and r.guidance == 7.5
                                      else r for r in result.rows])
    assert "at CFG 7.5 (CFG overshoots)" in report.headline(overshoot)
    grey = replace(result, rows=[replace(r, without=r.true_mean + 0.2) if r in black else r for r in result.rows])
    assert "overshoots" not in report.headline(grey)


def test_without_matplotlib_the_demo_says_which_extra_to_install_before_any_work(tmp_path):
    blocked = ("import sys; sys.modules['matplotlib'] = None; from sing_core.cli import main; "
               f"sys.exit(main(['demo', '--quick', '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "needs matplotlib for its figure" in done.stderr
    assert "pip install 'sd-webui-singdiffusion[tools]'" in done.stderr
    assert "training" not in done.stdout
