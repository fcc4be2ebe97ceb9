"""`python -m sing_core demo` at reduced size: the effect's direction and size, its outputs, its reproducibility."""

import csv
from dataclasses import replace

import pytest
import torch
from pngcheck import decode_png, read_chunks

from sing_core.cli import main
from sing_core.demo.data import make_mixture
from sing_core.demo.experiment import DemoConfig, module_x0, run_demo, train_module
from sing_core.plot import PALETTE


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    rc = main(["demo", "--quick", "--out", str(out)])
    return rc, out


def read_rows(out):
    with (out / "brightness.csv").open() as handle:
        return list(csv.reader(handle))


def test_demo_exits_cleanly_and_writes_the_csv_with_the_exact_header(quick_run):
    rc, out = quick_run
    assert rc == 0
    rows = read_rows(out)
    assert rows[0] == ["prompt", "guidance", "sampler", "true_mean", "without", "with"]
    assert len(rows) == 1 + 5 * 3 * 2  # prompts × guidances × samplers
    assert {(r[1], r[2]) for r in rows[1:]} == {(g, s) for g in ("1", "3", "7.5") for s in ("ddim", "euler")}


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_gaussian_start_misses_the_brightness_and_the_module_fixes_it(quick_run, sampler):
    _, out = quick_run
    rows = [r for r in read_rows(out)[1:] if r[1] == "1" and r[2] == sampler]
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


def test_the_png_decodes_and_shows_samples_and_bars(quick_run):
    _, out = quick_run
    data = (out / "demo.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds = [kind for kind, _ in read_chunks(data)]
    assert kinds[0] == b"IHDR"
    width, height, rows = decode_png(data)
    assert (width, height) == (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    assert width >= 1000
    assert height >= 700
    counts: dict[tuple[int, int, int], int] = {}
    for row in rows:
        for i in range(0, len(row), 3):
            key = (row[i], row[i + 1], row[i + 2])
            counts[key] = counts.get(key, 0) + 1
    for color in PALETTE[:3]:  # the bars of the three series: true, without, with
        assert counts.get(color, 0) > 2000, color
    greys = sum(n for (r, g, b), n in counts.items() if r == g == b and 20 < r < 235)
    assert greys > 5 * 4 * 2 * 32 * 32  # the sample thumbnails


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
