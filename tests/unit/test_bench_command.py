"""`python -m sing_core bench brightness` end to end against a fake server that replays the live webui's recorded
answers (tests/unit/data/bench_brightness/, recorded by tests/live/test_bench_brightness.py): preflight, table, CSVs,
chart; and the import rule (the bench needs no torch)."""

import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_webui import FakeWebui
from figure_check import is_blank, panels, read_png
from PIL import Image

from sing_core.bench import report
from sing_core.bench.preflight import ServerFacts, check_sampler, choose_module
from sing_core.bench.report import SUMMARY_HEADER, render_chart
from sing_core.bench.stats import PromptStats
from sing_core.cli import main
from sing_core.figures import COLORS

DATA = Path(__file__).parent / "data" / "bench_brightness"
SERVER = json.loads((DATA / "server.json").read_text())
ANSWERS = json.loads((DATA / "txt2img.json").read_text())
PROMPTS = ("solid black background", "solid white background")
ROOT = Path(__file__).resolve().parents[2]


def arm_of(request: dict) -> str:
    return "with" if request["alwayson_scripts"]["SingDiffusion"]["args"][0]["enabled"] else "without"


def answer_txt2img(request: dict):
    for entry in ANSWERS:
        recorded = entry["request"]
        if all(recorded[k] == request[k] for k in ("prompt", "seed", "batch_size", "steps", "width")) and \
                arm_of(recorded) == arm_of(request):
            return 200, entry["response"], 0.0
    return 500, {"detail": f"nothing recorded for {request['prompt']!r} seed {request['seed']}"}, 0.0


def recorded_webui(fake: FakeWebui, *, modules_route: list | None = None) -> FakeWebui:
    fake.route("GET", "/sdapi/v1/scripts", body=SERVER["scripts"])
    fake.route("GET", "/sdapi/v1/script-info", body=SERVER["script_info"])
    fake.route("GET", "/sdapi/v1/options", body=SERVER["options"])
    fake.route("GET", "/sdapi/v1/samplers", body=SERVER["samplers"])
    fake.route("GET", "/sdapi/v1/schedulers", body=SERVER["schedulers"])
    if modules_route is not None:
        fake.route("GET", "/singdiffusion/v1/modules", body=modules_route)
    fake.handle("POST", "/sdapi/v1/txt2img", answer_txt2img)
    return fake


def run_bench_cli(url: str, out: Path, tmp_path: Path, *extra: str) -> int:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# the recorded prompts\n" + "\n".join(PROMPTS) + "\n\n")
    return main(["bench", "brightness", "--url", url, "--out", str(out), "--prompts", str(prompts), "--seeds", "2",
                 "--steps", "4", "--width", "64", "--height", "64", "--retries", "0", *extra])


def pil_grey(image_b64: str) -> float:
    with Image.open(io.BytesIO(base64.b64decode(image_b64))) as image:
        return float(np.asarray(image.convert("RGB"), dtype=np.float64).mean())


def expected_greys() -> dict:
    return {(e["request"]["prompt"], e["request"]["seed"], arm_of(e["request"])): pil_grey(e["response"]["images"][0])
            for e in ANSWERS if e["request"]["batch_size"] == 1}


def test_the_bench_on_recorded_answers_writes_the_numbers_pillow_reads(tmp_path, capsys):
    out = tmp_path / "out"
    with FakeWebui() as fake:
        assert run_bench_cli(recorded_webui(fake).url, out, tmp_path) == 0
        posted = [body for method, path, body in fake.requests if method == "POST"]
    captured = capsys.readouterr()
    assert len(posted) == 8
    assert {arm_of(body) for body in posted[:2]} == {"with", "without"}  # the two arms of a seed go together
    grey = expected_greys()
    with (out / "bench_brightness_images.csv").open(newline="") as file:
        images = list(csv.DictReader(file))
    assert [(r["prompt"], r["seed"]) for r in images] == [(p, s) for p in PROMPTS for s in ("0", "1")]
    for row in images:
        for arm in ("without", "with"):
            assert float(row[arm]) == pytest.approx(grey[(row["prompt"], int(row["seed"]), arm)], abs=5e-4)
    with (out / "bench_brightness.csv").open(newline="") as file:
        reader = csv.reader(file)
        assert tuple(next(reader)) == SUMMARY_HEADER
        summary = [dict(zip(SUMMARY_HEADER, row, strict=True)) for row in reader]
    for row in summary:
        without = [grey[(row["prompt"], s, "without")] for s in (0, 1)]
        with_module = [grey[(row["prompt"], s, "with")] for s in (0, 1)]
        differences = np.subtract(with_module, without)
        assert float(row["without_mean"]) == pytest.approx(np.mean(without), abs=5e-4)
        assert float(row["with_std"]) == pytest.approx(np.std(with_module, ddof=1), abs=5e-4)
        assert float(row["difference"]) == pytest.approx(differences.mean(), abs=5e-4)
        assert float(row["difference_se"]) == pytest.approx(differences.std(ddof=1) / np.sqrt(2), abs=5e-4)
    assert [(r["expected"], r["agrees"]) for r in summary] == [("darker", "no"), ("lighter", "yes")]
    # the table on stdout carries the same numbers
    black = summary[0]
    line = next(x for x in captured.out.splitlines() if x.startswith("solid black background"))
    assert f"{float(black['without_mean']):6.1f}" in line
    assert f"{float(black['difference']):+7.2f}" in line
    assert "1 of 2 prompts agree" in captured.out
    assert "module tiny-sing" in captured.out  # chosen from script-info: the Module dropdown's default
    assert "generating: 100%" in captured.err
    assert "8/8" in captured.err
    settings = json.loads((out / "bench_brightness.json").read_text())
    assert settings["module_labels"] == ["tiny-sing [d472fd2474]"]
    assert settings["module_source"] == "/sdapi/v1/script-info"
    assert settings["checkpoint"] == SERVER["options"]["sd_model_checkpoint"]
    chart = read_png(out / "bench_brightness.png")
    width_in, height_in = report.chart_size_in(len(PROMPTS))  # a column per prompt on a page at least 8 in wide
    assert (width_in, height_in) == (report.MIN_WIDTH_IN, report.CHART_HEIGHT_IN + report.IMAGES_HEIGHT_IN)
    assert chart.shape == (round(report.DPI * height_in), round(report.DPI * width_in), 3)
    assert not is_blank(chart)
    assert len(panels(chart)) == 1 + len(PROMPTS)  # the bars, then each prompt's first seed without | with


def batch_answer(request: dict):
    """Seeds s and s+1 in one answer. A batch of 2 is recorded for "with"; for "without" it is put together from
    the two recorded single answers (images and per-image info concatenated, as the webui does)."""
    if arm_of(request) == "with":
        return answer_txt2img(request)
    singles = [answer_txt2img({**request, "seed": request["seed"] + k, "batch_size": 1})[1] for k in (0, 1)]
    infos = [json.loads(a["info"]) for a in singles]
    info = {**infos[0], "all_seeds": [i["all_seeds"][0] for i in infos],
            "infotexts": [i["infotexts"][0] for i in infos]}
    return 200, {"images": [a["images"][0] for a in singles], "info": json.dumps(info)}, 0.0


def test_batches_request_consecutive_seeds_together(tmp_path):
    black = tmp_path / "black.txt"
    black.write_text("solid black background\n")
    with FakeWebui() as fake:
        recorded_webui(fake).handle("POST", "/sdapi/v1/txt2img", batch_answer)
        code = main(["bench", "brightness", "--url", fake.url, "--out", str(tmp_path / "out"), "--prompts", str(black),
                     "--seeds", "2", "--steps", "4", "--width", "64", "--height", "64", "--batch-size", "2"])
        posted = [body for method, _, body in fake.requests if method == "POST"]
    assert code == 0
    assert [(body["seed"], body["batch_size"]) for body in posted] == [(0, 2), (0, 2)]
    grey = expected_greys()
    with (tmp_path / "out" / "bench_brightness_images.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            for arm in ("without", "with"):  # batched and single generations agree to float rounding
                assert float(row[arm]) == pytest.approx(grey[(row["prompt"], int(row["seed"]), arm)], abs=0.05)


def test_the_module_list_route_is_used_when_the_extension_has_it(tmp_path, capsys):
    with FakeWebui() as fake:
        recorded_webui(fake, modules_route=[{"name": "other"}, {"name": "tiny-sing"}])
        assert run_bench_cli(fake.url, tmp_path / "out", tmp_path, "--module", "tiny-sing") == 0
        code = run_bench_cli(fake.url, tmp_path / "out2", tmp_path, "--module", "missing")
    assert code == 2
    err = capsys.readouterr().err
    assert "module 'missing' is not installed" in err
    assert "installed: other, tiny-sing" in err
    settings = json.loads((tmp_path / "out" / "bench_brightness.json").read_text())
    assert settings["module_source"] == "/singdiffusion/v1/modules"


def test_a_webui_without_the_extension_is_refused_before_generating(tmp_path, capsys):
    with FakeWebui() as fake:
        recorded_webui(fake).route("GET", "/sdapi/v1/scripts", body=SERVER["scripts_without_extension"])
        assert run_bench_cli(fake.url, tmp_path / "out", tmp_path) == 2
        assert not [r for r in fake.requests if r[0] == "POST"]
    err = capsys.readouterr().err
    assert "has no SingDiffusion script in txt2img" in err
    assert "install the sd-webui-singdiffusion extension" in err


def test_a_webui_without_api_is_told_to_start_with_api(tmp_path, capsys):
    with FakeWebui() as fake:  # every route 404s, like a webui started without --api
        assert run_bench_cli(fake.url, tmp_path / "out", tmp_path) == 2
    assert "start the webui with the API enabled" in capsys.readouterr().err


def test_a_failure_midway_reports_the_servers_detail(tmp_path, capsys):
    with FakeWebui() as fake:
        recorded_webui(fake).route("POST", "/sdapi/v1/txt2img", 422, {"detail": "SingDiffusion: module broke"})
        assert run_bench_cli(fake.url, tmp_path / "out", tmp_path) == 2
    assert "HTTP 422: SingDiffusion: module broke" in capsys.readouterr().err


def test_a_failure_midway_keeps_the_images_measured_so_far(tmp_path, capsys):
    posts = []

    def fail_after_four(request):
        posts.append(request)
        return answer_txt2img(request) if len(posts) <= 4 else (500, {"detail": "", "errors": "server died"}, 0.0)

    with FakeWebui() as fake:
        recorded_webui(fake).handle("POST", "/sdapi/v1/txt2img", fail_after_four)
        assert run_bench_cli(fake.url, tmp_path / "out", tmp_path) == 2
    captured = capsys.readouterr()
    assert "HTTP 500: server died" in captured.err
    assert "4 images (partial: 4 of 8 planned)" in captured.out
    settings = json.loads((tmp_path / "out" / "bench_brightness.json").read_text())
    assert (settings["complete"], settings["images"], settings["planned_images"]) == (False, 4, 8)
    with (tmp_path / "out" / "bench_brightness.csv").open(newline="") as file:
        summary = list(csv.DictReader(file))
    # the first four requests: seed 0 of both prompts in both arms
    assert [(r["prompt"], r["images"]) for r in summary] == [(p, "1") for p in PROMPTS]


def test_an_interrupt_writes_what_was_measured_and_exits_130(tmp_path, capsys, monkeypatch):
    import sing_core.progress

    advance_to = sing_core.progress.advance_to

    def interrupt_at_two(bar, done, total=None, detail=""):
        advance_to(bar, done, total, detail)
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(sing_core.progress, "advance_to", interrupt_at_two)
    with FakeWebui() as fake:
        assert run_bench_cli(recorded_webui(fake).url, tmp_path / "out", tmp_path) == 130
    captured = capsys.readouterr()
    assert "interrupted" in captured.err
    assert "2 images (partial: 2 of 8 planned)" in captured.out
    assert (tmp_path / "out" / "bench_brightness.png").is_file()


def test_bad_client_settings_are_named(tmp_path, capsys):
    assert main(["bench", "brightness", "--retries", "-1", "--out", str(tmp_path)]) == 2
    assert "--retries -1 must be 0 or more" in capsys.readouterr().err


def test_prompt_files_that_cannot_be_used_are_named(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(SystemExit, match=r"holds no prompt"):
        main(["bench", "brightness", "--prompts", str(empty)])
    with pytest.raises(SystemExit, match=r"cannot read --prompts .*missing.txt"):
        main(["bench", "brightness", "--prompts", str(tmp_path / "missing.txt")])


def facts(**changes) -> ServerFacts:
    base = {"modules": ("a", "b"), "default_module": "b", "module_source": "/sdapi/v1/script-info",
            "checkpoint": "c", "samplers": ("DDIM", "Euler"), "schedulers": ("Automatic", "Karras"),
            "samples_format": "png", "accepted": frozenset({"DDIM", "Euler", "k_euler", "Automatic", "Karras"})}
    return ServerFacts(**{**base, **changes})


def test_the_module_is_the_flag_else_the_default_else_the_first():
    assert choose_module(facts(), "a", "u") == "a"
    assert choose_module(facts(), None, "u") == "b"
    assert choose_module(facts(default_module="gone"), None, "u") == "a"
    assert choose_module(facts(modules=(), module_source=""), "x", "u") == "x"  # nothing to check against
    with pytest.raises(Exception, match="no SingDiffusion module installed"):
        choose_module(facts(modules=(), default_module=""), None, "u")
    with pytest.raises(Exception, match="name one with --module"):
        choose_module(facts(modules=(), default_module="", module_source=""), None, "u")


def test_samplers_and_schedulers_are_checked_against_the_webuis_lists():
    check_sampler(facts(), "k_euler", "Karras", "u")  # aliases are accepted, as the webui accepts them
    with pytest.raises(Exception, match=r"--sampler 'Heun' is not a sampler .*DDIM, Euler"):
        check_sampler(facts(), "Heun", None, "u")
    with pytest.raises(Exception, match=r"--scheduler 'Fancy'"):
        check_sampler(facts(), "DDIM", "Fancy", "u")


def row(prompt: str, without: float, with_module: float, std: float) -> PromptStats:
    return PromptStats(prompt, 3, without, std, with_module, std, with_module - without, 1.0, "")


def test_the_chart_draws_bars_in_proportion_with_whiskers(tmp_path):
    rows = [row("black", 60.0, 30.0, 10.0), row("white é", 200.0, 240.0, 0.0)]
    pixels = read_png(render_chart(rows, "title", tmp_path / "c.png")).astype(int)
    [(top, _, bottom, _)] = panels(pixels)  # no images given: the bars' panel alone
    per_level = (bottom - top) / 255  # the panel spans 0 … 255
    bars = {}
    for arm in ("without", "with"):
        colour = [int(COLORS[arm][i : i + 2], 16) for i in (1, 3, 5)]
        mask = np.all(pixels == colour, axis=-1)
        mask[:top], mask[bottom:] = False, False  # the legend's swatches are above the bars: keep them out
        columns = np.flatnonzero(mask.any(axis=0))
        groups = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
        groups = [g for g in groups if mask[bottom - 2, g[len(g) // 2]]]  # bars stand on 0; the legend's swatch not
        bars[arm] = [(int(g[len(g) // 2]), int(np.flatnonzero(mask[:, g[len(g) // 4]])[0])) for g in groups]
        heights = [int(mask[:, g[len(g) // 4]].sum()) for g in groups]  # off centre: the whisker covers the centre
        means = [r.without_mean if arm == "without" else r.with_mean for r in rows]
        assert heights == pytest.approx([m * per_level for m in means], abs=2), arm
    # whiskers: ±10 grey levels (dark, centred on the bar) on the first "with" bar, none where std = 0
    for (centre, bar_top), std in zip(bars["with"], (10.0, 0.0), strict=True):
        dark = pixels[:, centre - 1 : centre + 2].max(axis=-1).min(axis=-1) < 100
        reach = round(std * per_level)
        if std > 0:
            assert dark[bar_top - reach + 2 : bar_top - 1].all()  # the whisker runs up to mean + std …
        assert not dark[bar_top - reach - 8 : bar_top - reach - 3].any()  # … and stops there


def test_the_bench_modules_need_no_torch():
    """sing_core/__init__ imports torch for the engine; the bench itself must not (it runs beside any webui)."""
    code = (
        "import sys, types\n"
        "sys.modules['torch'] = None\n"  # any import of torch now fails
        "package = types.ModuleType('sing_core'); package.__path__ = ['sing_core']\n"
        "sys.modules['sing_core'] = package\n"  # the package without running its __init__ (which needs torch)
        "import sing_core.commands.bench_brightness as command, sing_core.bench.preflight, sing_core.bench.report\n"
        "import sing_core.bench.stats, sing_core.progress, sing_core.figures\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('torch', 'safetensors', 'numpy', 'PIL', 'matplotlib', 'tqdm')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['torch']"  # only the blocking entry itself
