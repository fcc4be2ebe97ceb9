"""The GPU check (`python -m sing_core bench gpu`) rehearsed on the CPU at tiny sizes: every section's code path runs,
the report has its structure, half-precision x̂0 is finite and within the promised tolerance, nothing is held after
release. Timing figures are only checked to be there (no timing in tests); the real run is tests/gpu."""

import json
import math

import pytest
import torch

from sing_core import cli
from sing_core.gpucheck import check
from sing_core.gpucheck.check import CheckError, resolve_device, run_check
from sing_core.gpucheck.parity import TOLERANCES
from sing_core.gpucheck.report import render, verdicts, write

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def report(one_torch_thread):
    return run_check(CPU, rehearse=True, command="rehearsal test")


def test_every_section_ran(report):
    assert report["errors"] == {}
    assert {"run", "parity", "speed", "memory", "training", "verdicts"} <= set(report)
    assert report["run"]["mode"] == "rehearsal at tiny sizes"
    assert report["run"]["device"].startswith("CPU")


def test_half_precision_x0_is_finite_within_tolerance_and_really_half(report):
    rows = report["parity"]
    assert {(r["module"].split(",")[0], r["dtype"], r["guidance"]) for r in rows} == {
        (module, dtype, w)
        for module, guided in (("SD-1.5 layout", 7.5), ("OMS-b layout", 2.0))
        for dtype in ("float16", "bfloat16")
        for w in (1.0, guided)
    }
    for row in rows:
        assert row["x0_dtype"] == row["dtype"]  # the whole path ran in half precision, x̂0 included
        assert row["x0_finite"]
        assert all(row["start_finite"].values())
        assert set(row["start_finite"]) == {"sigma", "unit", "vp"}
        assert 0.0 < row["x0_rel_rms"] <= TOLERANCES[row["dtype"]], row  # > 0: it really was not float32
        for errors in (row["start_rel_rms"], row["start_mean_error"]):
            assert set(errors) == {"sigma", "unit", "vp"}
            assert all(math.isfinite(v) for v in errors.values())
        assert row["within"]
    assert report["verdicts"]["half_precision_within_tolerance"] is True


def test_speed_rows_compare_the_same_weights(report):
    rows = report["speed"]
    assert [r["first"] for r in rows] == ["ours"] * 3 + ["module"] * 2
    for row in rows:
        assert row["first_ms"] > 0
        assert row["second_ms"] > 0
        assert row["ratio"] > 0
        assert row["rounds"] == 3
    for row in rows[:3]:  # ours and diffusers on one set of weights: the same output
        assert row["max_abs_difference"] < 1e-4
    assert "×16 latent" in rows[2]["case"]  # the SDXL-size case at twice the side
    assert isinstance(report["verdicts"]["ours_no_slower_than_diffusers"], bool)


def test_memory_release_leaves_nothing_behind(report):
    forward = report["memory"]["forward"]
    assert len(forward) == 2
    for row in forward:
        assert row["weights_mib"] > 0
        assert row["forward_peak_mib"] is None  # the CPU has no allocator counters, and says so
        assert "CPU" in row["note"]
    release = {row["policy"]: row for row in report["memory"]["release"]}
    assert release["move to CPU after use"]["tensors_left_on_device"] is False
    assert release["unload after use"]["module_freed"] is True
    assert all(row["released"] and row["start_finite"] for row in release.values())
    assert report["verdicts"]["nothing_held_after_release"] is True


def test_training_rows_through_the_trainer_with_and_without_checkpointing(report):
    rows = report["training"]
    assert [r["gradient_checkpointing"] for r in rows] == [False, True]
    for row in rows:
        assert row["autocast"] == "bf16"
        assert row["timed_steps"] == 2
        assert row["samples_per_s"] > 0
        assert row["loss_finite"]


def test_render_and_write(report, tmp_path):
    text = render(report)
    for header in ("parity:", "speed (float32", "memory", "training", "verdicts:"):
        assert header in text
    write(report, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report))
    assert (tmp_path / "report.txt").read_text().startswith("GPU check on CPU")


def test_a_failing_section_is_reported_and_the_others_kept(monkeypatch):
    def broken(*_args):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(check, "speed_rows", broken)
    monkeypatch.setattr(check, "training_rows", lambda *_args: [])
    report = run_check(CPU, rehearse=True, sections=("speed", "training"))
    assert report["training"] == []
    assert "speed" not in report
    assert report["errors"]["speed"].startswith("RuntimeError: kernel exploded")
    assert "speed: FAILED: RuntimeError: kernel exploded" in render(report)
    assert report["verdicts"]["ours_no_slower_than_diffusers"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_check_says_so_and_how_to_rehearse():
    with pytest.raises(CheckError, match=r"CUDA not available.*--device cpu --rehearse"):
        resolve_device("cuda", rehearse=False)


def test_cpu_without_rehearse_is_refused():
    with pytest.raises(CheckError, match="--rehearse"):
        resolve_device("cpu", rehearse=False)


def test_the_command_writes_its_report(tmp_path, capsys, one_torch_thread):
    argv = ["bench", "gpu", "--device", "cpu", "--rehearse", "--sections", "parity", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "parity:" in out
    assert "verdicts: half_precision_within_tolerance True" in out
    saved = json.loads((tmp_path / "report.json").read_text())
    assert "speed" not in saved
    assert len(saved["parity"]) == 8


def test_the_command_refuses_an_unknown_section(capsys):
    assert cli.main(["bench", "gpu", "--device", "cpu", "--rehearse", "--sections", "parity,spead"]) == 2
    assert "unknown section spead" in capsys.readouterr().err


def test_the_verdicts_are_the_issues_criteria():
    parity = [{"within": True}, {"within": True}]
    speed = [
        {"first": "ours", "ratio": 0.97},
        {"first": "ours", "ratio": 1.0},
        {"first": "module", "ratio": 1.4},  # the module against a host step is a cost, not a verdict
    ]
    memory = {"release": [{"released": True}, {"released": True}]}
    assert verdicts({"parity": parity, "speed": speed, "memory": memory}) == {
        "half_precision_within_tolerance": True,
        "ours_no_slower_than_diffusers": True,
        "nothing_held_after_release": True,
    }
    slower = [*speed, {"first": "ours", "ratio": 1.02}]
    held = {"release": [{"released": True}, {"released": False}]}
    assert verdicts({"parity": [*parity, {"within": False}], "speed": slower, "memory": held}) == {
        "half_precision_within_tolerance": False,
        "ours_no_slower_than_diffusers": False,
        "nothing_held_after_release": False,
    }
    assert set(verdicts({}).values()) == {None}
