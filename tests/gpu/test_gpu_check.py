"""The GPU check on a real CUDA device (issue 18's figures): skipped with its reason where CUDA is absent.

    python -m pytest tests/gpu -m gpu -s      # or, printing the whole report: python -m sing_core bench gpu
"""

import pytest
import torch

from sing_core.gpucheck.check import run_check
from sing_core.gpucheck.report import render

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available"),
]


@pytest.fixture(scope="module")
def report():
    result = run_check(torch.device("cuda"), rehearse=False, command="pytest tests/gpu -m gpu")
    print(render(result))
    return result


def test_every_section_ran(report):
    assert report["errors"] == {}


def test_half_precision_x0_within_the_promised_tolerance(report):
    assert report["verdicts"]["half_precision_within_tolerance"], [r for r in report["parity"] if not r["within"]]


def test_our_unet_is_no_slower_than_diffusers(report):
    assert report["verdicts"]["ours_no_slower_than_diffusers"], [r for r in report["speed"] if r["first"] == "ours"]


def test_the_module_holds_no_cuda_memory_after_release(report):
    assert report["verdicts"]["nothing_held_after_release"], report["memory"]["release"]
    assert all(row["held_bytes"] == 0 for row in report["memory"]["release"])


def test_gradient_checkpointing_saves_memory(report):
    plain, checkpointed = report["training"]
    assert checkpointed["peak_mib"] < plain["peak_mib"]
    assert plain["loss_finite"]
    assert checkpointed["loss_finite"]
