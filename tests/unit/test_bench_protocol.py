"""The brightness protocol's parts: job plan, payloads, reading answers (recorded from the live webui) and their
images, statistics."""

import base64
import io
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sing_core.bench.client import BenchError
from sing_core.bench.protocol import (
    PAPER_PROMPTS,
    BenchRun,
    BenchSettings,
    Job,
    Sample,
    mean_grey,
    module_label,
    parse_response,
    payload,
    plan_jobs,
    read_image,
)
from sing_core.bench.stats import expected_direction, prompt_stats, summarise

RECORDED = json.loads((Path(__file__).parent / "data" / "bench_brightness" / "txt2img.json").read_text())


def pil_grey(image_b64: str) -> float:
    with Image.open(io.BytesIO(base64.b64decode(image_b64))) as image:
        return float(np.asarray(image.convert("RGB"), dtype=np.float64).mean())


def recorded_job(entry: dict) -> Job:
    request = entry["request"]
    arm = "with" if request["alwayson_scripts"]["SingDiffusion"]["args"][0]["enabled"] else "without"
    return Job(request["prompt"], arm, tuple(range(request["seed"], request["seed"] + request["batch_size"])))


def test_the_plan_pairs_every_seed_in_both_arms_and_alternates_which_goes_first():
    settings = BenchSettings(seeds=5, batch_size=2, seed_start=10)
    jobs = plan_jobs(settings)
    assert len(jobs) == 2 * len(PAPER_PROMPTS) * 3  # seed batches (10, 11), (12, 13), (14,)
    assert {job.seeds for job in jobs} == {(10, 11), (12, 13), (14,)}
    pairs = [jobs[i : i + 2] for i in range(0, len(jobs), 2)]
    for first, second in pairs:  # the two arms of one prompt and seed batch are sent back to back
        assert (first.prompt, first.seeds) == (second.prompt, second.seeds)
        assert {first.arm, second.arm} == {"with", "without"}
    assert [pair[0].arm for pair in pairs[:4]] == ["without", "with", "without", "with"]
    assert [job.prompt for job in jobs[:8:2]] == list(PAPER_PROMPTS)  # prompts interleaved within a seed batch
    images = {(job.prompt, seed, job.arm) for job in jobs for seed in job.seeds}
    assert len(images) == sum(len(job.seeds) for job in jobs) == 2 * 4 * 5


def test_payloads_differ_between_arms_only_in_the_script_args():
    settings = BenchSettings(module="m", module_guidance=3.0, text_source="host", scheduler="Karras")
    without = payload(settings, Job("p", "without", (4, 5)))
    with_module = payload(settings, Job("p", "with", (4, 5)))
    assert without.pop("alwayson_scripts") == {"SingDiffusion": {"args": [{"enabled": False,
                                                                           "follow_preset": False}]}}
    assert with_module.pop("alwayson_scripts") == {"SingDiffusion": {"args": [
        {"enabled": True, "module": "m", "guidance_scale": 3.0, "text_source": "host", "follow_preset": False}]}}
    assert without == with_module
    assert (without["seed"], without["batch_size"], without["scheduler"]) == (4, 2, "Karras")
    assert (without["steps"], without["cfg_scale"], without["sampler_name"]) == (50, 7.5, "DDIM")
    assert "scheduler" not in payload(BenchSettings(), Job("p", "with", (0,)))


@pytest.mark.parametrize(
    ("infotext", "label"),
    [
        ("a cube\nSteps: 4, Seed: 0, SingDiffusion: tiny-sing [d472fd2474], SingDiffusion guidance: 7.5",
         "tiny-sing [d472fd2474]"),
        ('p\nNegative prompt: n\nSteps: 4, SingDiffusion: "my, module [0123456789]", Version: 1',
         "my, module [0123456789]"),
        ("SingDiffusion: in the prompt only\nSteps: 4, Seed: 0", None),
        ("", None),
    ],
)
def test_the_module_label_is_read_from_the_infotexts_parameter_line(infotext, label):
    assert module_label(infotext) == label


def test_recorded_answers_read_as_pillow_reads_them():
    for entry in RECORDED:
        job = recorded_job(entry)
        samples = parse_response(job, entry["response"])
        assert [s.seed for s in samples] == list(job.seeds)
        assert [s.grey for s in samples] == pytest.approx([pil_grey(i) for i in entry["response"]["images"]],
                                                          abs=1e-9)
        for sample in samples:
            assert (sample.module_label or "").startswith("tiny-sing [") == (job.arm == "with")


def test_a_batch_answer_gives_the_same_grey_levels_as_single_requests():
    singles = {(s.prompt, s.seed, s.arm): s.grey for e in RECORDED if e["request"]["batch_size"] == 1
               for s in parse_response(recorded_job(e), e["response"])}
    batch = next(e for e in RECORDED if e["request"]["batch_size"] == 2)
    for sample in parse_response(recorded_job(batch), batch["response"]):
        assert sample.grey == pytest.approx(singles[(sample.prompt, sample.seed, sample.arm)], abs=0.05)


def test_answers_that_contradict_the_request_are_refused():
    entry = next(e for e in RECORDED if e["request"]["batch_size"] == 1 and recorded_job(e).arm == "with")
    job = recorded_job(entry)
    with pytest.raises(BenchError, match="the module did not run"):
        parse_response(job, {**entry["response"], "info": entry["response"]["info"].replace("SingDiffusion: ", "")})
    with pytest.raises(BenchError, match="but the module tiny-sing"):
        parse_response(Job(job.prompt, "without", job.seeds), entry["response"])
    with pytest.raises(BenchError, match="the webui used"):
        parse_response(Job(job.prompt, job.arm, (job.seeds[0] + 1,)), entry["response"])
    with pytest.raises(BenchError, match="returned 1"):
        parse_response(Job(job.prompt, job.arm, (0, 1)), entry["response"])
    with pytest.raises(BenchError, match="not the v1 API's shape"):
        parse_response(job, {"detail": "?"})


def test_a_grid_placed_first_is_skipped():
    entry = next(e for e in RECORDED if e["request"]["batch_size"] == 2)
    info = json.loads(entry["response"]["info"])
    grid = base64.b64encode(b"not an image").decode()
    answer = {"images": [grid, *entry["response"]["images"]], "info": json.dumps({**info, "index_of_first_image": 1})}
    assert len(parse_response(recorded_job(entry), answer)) == 2


def samples_of(prompt: str, without: list[float], with_module: list[float]) -> list[Sample]:
    return ([Sample(prompt, "without", seed, grey, None) for seed, grey in enumerate(without)]
            + [Sample(prompt, "with", seed, grey, "m [x]") for seed, grey in enumerate(with_module)])


def test_statistics_per_prompt_are_paired_by_seed():
    without, with_module = [100.0, 120.0, 90.0, 110.0], [80.0, 104.0, 68.0, 95.0]
    row = prompt_stats("solid black background", samples_of("solid black background", without, with_module)
                       + samples_of("other", [0.0], [255.0]))
    differences = [m - w for w, m in zip(without, with_module, strict=True)]
    assert row.images == 4
    assert row.without_mean == pytest.approx(105.0)
    assert row.without_std == pytest.approx(statistics.stdev(without))
    assert row.with_mean == pytest.approx(statistics.fmean(with_module))
    assert row.difference == pytest.approx((-20 - 16 - 22 - 15) / 4)
    assert row.difference_se == pytest.approx(statistics.stdev(differences) / 2)
    assert row.difference_se < row.without_std / 2  # the shared seed makes the paired difference precise
    assert (row.expected, row.agrees) == ("darker", True)


def test_one_seed_has_no_spread_and_unpaired_images_are_left_out():
    samples = samples_of("p", [10.0, 20.0], [30.0])  # seed 1 has no "with" image
    row = prompt_stats("p", samples)
    assert row.images == 1
    assert math.isnan(row.without_std)
    assert math.isnan(row.difference_se)
    assert row.difference == 20.0
    with pytest.raises(ValueError, match="no seed of 'q'"):
        prompt_stats("q", samples)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("solid black background", "darker"),
        ("Monochrome line-art logo on a white background", "lighter"),
        ("a dark night", "darker"),
        ("black and white photo", ""),
        ("a red cube", ""),
    ],
)
def test_the_papers_expected_direction_comes_from_the_prompts_words(prompt, expected):
    assert expected_direction(prompt) == expected


def test_summarise_keeps_the_prompt_order_and_judges_white_prompts_lighter():
    samples = samples_of("solid white background", [200.0, 210.0], [190.0, 205.0]) + samples_of(
        "solid black background", [50.0, 60.0], [40.0, 45.0])
    rows = summarise(["solid white background", "solid black background"], samples)
    assert [r.prompt for r in rows] == ["solid white background", "solid black background"]
    assert [r.agrees for r in rows] == [False, True]


def test_settings_are_checked_with_the_flag_names():
    with pytest.raises(BenchError) as raised:
        BenchSettings(seeds=0, width=100, cfg_scale=0.5, module_guidance=40).check()
    for text in ("--seeds 0", "--width 100 is not a multiple of 8", "--cfg 0.5", "--module-guidance 40"):
        assert text in str(raised.value)
    BenchSettings().check()


def encoded(pixels: np.ndarray, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind, **options)
    return buffer.getvalue()


def test_the_grey_level_is_the_exact_mean_of_r_g_b_and_alpha_is_dropped():
    rgba = np.zeros((3, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 61, 7
    rgba[0, 0, :3] = 255
    warnings = []
    image = read_image(encoded(rgba, "PNG"), warn=warnings.append)
    assert image.mode == "RGB"
    assert mean_grey(image) == (14 * (10 + 20 + 61) + 3 * 255) / (15 * 3)
    assert warnings == []  # PNG is exact: nothing to warn about
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert mean_grey(read_image(encoded(grey, "PNG"))) == 127.5  # grey PNGs count each pixel once per channel


def test_lossy_formats_are_read_with_a_warning_and_garbage_is_refused():
    warnings = []
    jpeg = read_image(encoded(np.full((16, 16, 3), 200, np.uint8), "JPEG", quality=95), warn=warnings.append)
    assert abs(mean_grey(jpeg) - 200) < 2
    assert "JPEG" in warnings[0]
    assert "File format for images to png" in warnings[0]
    with pytest.raises(BenchError, match="Pillow cannot read"):
        read_image(b"not an image at all")
    truncated = encoded(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), "PNG")[:-200]
    with pytest.raises(BenchError, match="File format for images to png"):
        read_image(truncated)


def test_each_sample_keeps_a_small_image_and_the_run_pairs_them_by_seed():
    entry = next(e for e in RECORDED if e["request"]["batch_size"] == 2)
    samples = parse_response(recorded_job(entry), entry["response"])
    assert [s.thumbnail.size for s in samples] == [(64, 64), (64, 64)]  # at most THUMBNAIL_PX a side: 64 stays 64
    assert np.asarray(samples[1].thumbnail).mean() == pytest.approx(samples[1].grey, abs=1e-9)
    marks = {(seed, arm): Image.new("RGB", (2, 2), (40 * seed, 100 * (arm == "with"), 0)) for seed in (0, 1, 2)
             for arm in ("without", "with")}  # distinct images (Pillow compares them by content)
    run = BenchRun(BenchSettings(prompts=("p",)), [Sample("p", arm, seed, 0.0, None, image) for (seed, arm), image
                                                   in marks.items() if (seed, arm) != (0, "with")])
    assert run.thumbnails("p") == (marks[(1, "without")], marks[(1, "with")])  # seed 0 lacks its "with" image
    assert run.thumbnails("other") is None
