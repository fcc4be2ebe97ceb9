"""`python -m sing_core bench brightness` against the real webui with the tiny module (x̂0 latent mean ≈ +1).

The tiny VAE turns +1 of latent mean into about +33 grey levels, so on this setup every prompt comes out brighter
with the module (not the paper's darker/lighter reading, which needs a trained module and a real checkpoint).

BENCH_RECORD=1 rewrites the unit tier's recorded answers (tests/unit/data/bench_brightness/) from this webui, then
checks them against a second recording; without it, test_recorded_answers_are_what_this_webui_answers checks that
every recorded answer is still what this webui answers.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from live_hosts import HOST
from recorded_images import recording_mismatch
from webui_client import decode_png, grey_level

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the unit tier's reader of our figures
from figure_check import is_blank, panels, read_png

from sing_core.bench.client import ExtensionMissingError, RequestRejectedError, WebuiApi
from sing_core.bench.protocol import BenchSettings, Job, payload, run_bench
from sing_core.bench.report import DPI, chart_size_in

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "unit" / "data" / "bench_brightness"
SMALL = ["--seeds", "2", "--steps", "4", "--width", "64", "--height", "64", "--timeout", "120", "--retries", "0"]


def bench(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sing_core", "bench", "brightness", "--url", url, "--out", str(out),
               *SMALL, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def bench_run(webui_server, sing_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = bench(webui_server.url, out, "--module", sing_module.name)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done


def test_the_bench_writes_its_table_csvs_chart_and_settings(bench_run):
    out, done = bench_run
    for prompt in ("solid black background", "Monochrome line-art logo on a white background"):
        assert prompt in done.stdout
    assert "16 images" in done.stdout  # 4 prompts × 2 seeds × 2 arms
    assert "generating: 100%" in done.stderr  # the tqdm bar
    assert "16/16" in done.stderr
    summary = read_csv(out / "bench_brightness.csv")
    assert [row["prompt"] for row in summary] == [
        "solid black background", "solid white background",
        "Monochrome line-art logo on a black background", "Monochrome line-art logo on a white background",
    ]
    assert all(row["images"] == "2" for row in summary)
    chart = read_png(out / "bench_brightness.png")
    width_in, height_in = chart_size_in(4)
    assert chart.shape == (round(DPI * height_in), round(DPI * width_in), 3)
    assert not is_blank(chart)
    assert len(panels(chart)) == 1 + 4  # the bars, then each prompt's first seed without | with
    settings = json.loads((out / "bench_brightness.json").read_text())
    assert settings["settings"]["module"] == "tiny-sing"
    assert len(settings["module_labels"]) == 1
    assert settings["module_labels"][0].startswith("tiny-sing [")


def test_with_the_tiny_module_every_prompt_is_brighter(bench_run):
    """The direction, seed by seed and per prompt beyond three standard errors. The size is small here: the random
    tiny UNet does not remove the σ0·x1 noise the way a trained one does, so the module's +1 of latent mean (≈ +33
    grey levels when decoded alone) ends up as about +1.5 grey levels with DDIM at 4 steps (+0.4 with Euler)."""
    out, _ = bench_run
    for row in read_csv(out / "bench_brightness.csv"):
        assert float(row["with_mean"]) > float(row["without_mean"]), row
        assert float(row["difference"]) > 3 * float(row["difference_se"]) > 0, row
        assert row["agrees"] == ("yes" if row["expected"] == "lighter" else "no"), row
    for row in read_csv(out / "bench_brightness_images.csv"):
        assert float(row["with"]) > float(row["without"]), row


def test_the_numbers_equal_direct_api_calls(bench_run, webui, sing_module):
    """Grey levels in the CSV = PIL's reading of the same request sent by the live tier's own client; the
    baseline ("enabled": false) equals a request with no SingDiffusion args at all."""
    out, _ = bench_run
    images = {(row["prompt"], int(row["seed"])): row for row in read_csv(out / "bench_brightness_images.csv")}
    settings = BenchSettings(seeds=2, steps=4, width=64, height=64, module=sing_module.name)
    for prompt, seed in (("solid white background", 1), ("Monochrome line-art logo on a black background", 0)):
        for arm in ("without", "with"):
            request = payload(settings, Job(prompt, arm, (seed,)))
            image = webui.txt2img(**request).image
            assert float(images[(prompt, seed)][arm]) == pytest.approx(grey_level(image), abs=5e-4)
        request = payload(settings, Job(prompt, "without", (seed,)))
        del request["alwayson_scripts"]
        assert float(images[(prompt, seed)]["without"]) == pytest.approx(grey_level(webui.txt2img(**request).image),
                                                                         abs=5e-4)
    summary = {row["prompt"]: row for row in read_csv(out / "bench_brightness.csv")}
    black = [float(images[("solid black background", s)]["with"]) for s in (0, 1)]
    assert float(summary["solid black background"]["with_mean"]) == pytest.approx(np.mean(black), abs=1e-3)
    assert float(summary["solid black background"]["with_std"]) == pytest.approx(np.std(black, ddof=1), abs=1e-3)


def test_without_module_flag_the_extension_default_is_used(webui_server, sing_module, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# one prompt\nsolid black background\n")
    done = bench(webui_server.url, tmp_path / "out", "--prompts", str(prompts), "--seeds", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    settings = json.loads((tmp_path / "out" / "bench_brightness.json").read_text())
    chosen = settings["settings"]["module"]
    script = next(s for s in WebuiApi(webui_server.url).get("/sdapi/v1/script-info") if s["name"] == "singdiffusion")
    module_arg = next(arg for arg in script["args"] if arg["label"] == "Module")
    assert chosen == module_arg["value"]  # the panel's default: Settings' default module, else the first installed
    assert chosen in {sing_module.name, "tiny-sing-text"}
    assert settings["module_labels"][0].startswith(f"{chosen} [")


def test_an_unknown_module_is_refused_before_any_generation(webui_server, tmp_path):
    done = bench(webui_server.url, tmp_path, "--module", "no-such-module")
    assert done.returncode == 2
    assert "'no-such-module' is not installed" in done.stderr
    assert "tiny-sing" in done.stderr
    assert "generating" not in done.stderr


def test_the_servers_own_422_for_an_unknown_module_is_shown(webui_server):
    """Past the preflight (a module removed meanwhile), the extension's 422 detail reaches the user."""
    settings = BenchSettings(prompts=("solid black background",), seeds=1, steps=2, width=64, height=64,
                             module="no-such-module")
    with pytest.raises(RequestRejectedError) as raised:
        run_bench(WebuiApi(webui_server.url, attempts=1), settings)
    assert raised.value.status == 422
    assert "SingDiffusion module 'no-such-module' is not installed" in str(raised.value)


@pytest.fixture(scope="module")
def bare_webui(own_webui):
    """A second webui, on the same tiny checkpoint, without the extension (about 20 s to start)."""
    with own_webui("bare-data", extension=False) as server:
        yield server


def test_a_webui_without_the_extension_is_told_apart_before_and_during_a_run(bare_webui, tmp_path):
    done = bench(bare_webui.url, tmp_path)
    assert done.returncode == 2
    assert "has no SingDiffusion script in txt2img" in done.stderr
    assert "install the sd-webui-singdiffusion extension" in done.stderr
    assert "generating" not in done.stderr
    # past the preflight, the webui's own 422 for the request means the same
    settings = BenchSettings(prompts=("x",), seeds=1, steps=1, width=64, height=64, module="tiny-sing")
    with pytest.raises(ExtensionMissingError) as raised:
        run_bench(WebuiApi(bare_webui.url, attempts=1), settings)
    assert "Script 'SingDiffusion' not found" in str(raised.value)


# --- the unit tier's recorded answers -------------------------------------------------------------------------

RECORDED_SETTINGS = BenchSettings(prompts=("solid black background", "solid white background"), seeds=2, steps=4,
                                  width=64, height=64, module="tiny-sing")
RECORDED_JOBS = [Job(prompt, arm, (seed,)) for prompt in RECORDED_SETTINGS.prompts for seed in (0, 1)
                 for arm in ("without", "with")] + [Job("solid black background", "with", (0, 1))]


def _raw_post(url: str, request: dict) -> dict:
    """An error answer exactly as sent: status and JSON body."""
    sent = urllib.request.Request(url + "/sdapi/v1/txt2img", data=json.dumps(request).encode(), method="POST",
                                  headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(sent, timeout=120).close()
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": json.loads(error.read())}
    raise AssertionError(f"expected an error answer for {request}")


def _record(webui_server, bare_url: str) -> dict:
    api = WebuiApi(webui_server.url, attempts=1)
    answers = []
    for job in RECORDED_JOBS:
        request = payload(RECORDED_SETTINGS, job)
        answer = api.post("/sdapi/v1/txt2img", request)
        answers.append({"request": request, "response": {"images": answer["images"], "info": answer["info"]}})
    errors = {
        "script_missing": _raw_post(bare_url, payload(RECORDED_SETTINGS, Job("x", "with", (0,)))),
        "module_unknown": _raw_post(webui_server.url, payload(dataclasses.replace(RECORDED_SETTINGS, module="nope"),
                                                              Job("x", "with", (0,)))),
    }
    for answer in errors.values():  # the session's temporary folder is not part of the answer's meaning
        for key in ("detail", "errors"):
            answer["body"][key] = answer["body"][key].replace(str(webui_server.data_dir), "<data-dir>")
    scripts_without_extension = WebuiApi(bare_url).get("/sdapi/v1/scripts")
    script_info = [s for s in api.get("/sdapi/v1/script-info") if s["name"] == "singdiffusion"]
    options = api.get("/sdapi/v1/options")
    server = {
        "scripts": api.get("/sdapi/v1/scripts"),
        "scripts_without_extension": scripts_without_extension,
        "script_info": script_info,
        "options": {key: options.get(key) for key in ("samples_format", "sd_model_checkpoint",
                                                      "singdiffusion_default_module")},
        "samplers": api.get("/sdapi/v1/samplers"),
        "schedulers": api.get("/sdapi/v1/schedulers"),
    }
    return {"txt2img": answers, "errors": errors, "server": server}


VOLATILE_INFO = ("job_timestamp", "subseed", "all_subseeds")  # the clock and a random subseed (its strength is 0)


def _info(response: dict) -> dict:
    info = json.loads(response["info"])
    return {key: value for key, value in info.items() if key not in VOLATILE_INFO}


@pytest.mark.skipif(HOST is not None and HOST.key != "a1111",
                    reason="the unit tier's recorded answers are AUTOMATIC1111's (its tiny checkpoint and its replies)")
def test_recorded_answers_are_what_this_webui_answers(webui_server, sing_module, bare_webui):
    """Every recording the unit tier replays (errors.json, server.json, txt2img.json) against this webui's answers.

    BENCH_RECORD=1 first writes the files from one recording, then checks them against a second one taken
    afterwards: a recording is never compared with itself, and an answer that changes from call to call (which the
    unit tier could not replay faithfully) fails here."""
    if os.environ.get("BENCH_RECORD") == "1":
        RECORDED.mkdir(parents=True, exist_ok=True)
        for name, value in _record(webui_server, bare_webui.url).items():
            (RECORDED / f"{name}.json").write_text(json.dumps(value, indent=1) + "\n")
    live = _record(webui_server, bare_webui.url)
    saved = {name: json.loads((RECORDED / f"{name}.json").read_text()) for name in live}
    assert saved["errors"] == live["errors"]
    assert saved["server"].keys() == live["server"].keys() == {
        "scripts", "scripts_without_extension", "script_info", "options", "samplers", "schedulers"}
    for key in saved["server"]:
        assert saved["server"][key] == live["server"][key], key
    assert len(saved["txt2img"]) == len(live["txt2img"]) == len(RECORDED_JOBS)
    for old, new in zip(saved["txt2img"], live["txt2img"], strict=True):
        assert old["request"] == new["request"]
        assert _info(old["response"]) == _info(new["response"])
        old_images = [decode_png(base64.b64decode(i)) for i in old["response"]["images"]]
        new_images = [decode_png(base64.b64decode(i)) for i in new["response"]["images"]]
        assert len(old_images) == len(new_images) == old["request"]["batch_size"]
        # ±1 grey level on at most 1 % of the values: another machine's float kernels, not a change (recorded_images)
        mismatches = [recording_mismatch(a, b) for a, b in zip(old_images, new_images, strict=True)]
        assert mismatches == [None] * len(old_images), (old["request"], mismatches)
