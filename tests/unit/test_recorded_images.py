"""The live tier's comparison of a recorded image with a rebuilt webui's answer: rounding passes, a change fails."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))  # the live tier's rule, tested without a webui
from recorded_images import recording_mismatch

RECORDED = np.random.default_rng(0).integers(40, 200, size=(64, 64, 3), dtype=np.uint8)


def test_a_few_values_one_level_off_pass():
    answered = RECORDED.copy()
    answered[0, 0, 0] += 1
    answered[5, 7, 2] -= 1
    answered[63, 63, 1] += 1  # 3 of 12,288, as a rebuilt host answered
    assert recording_mismatch(RECORDED, answered) is None
    assert recording_mismatch(RECORDED, RECORDED) is None


def test_a_value_two_levels_off_fails():
    answered = RECORDED.copy()
    answered[10, 10, 0] += 2
    assert "2 grey levels off" in recording_mismatch(RECORDED, answered)


def test_one_level_off_everywhere_fails():
    assert "100.0% of the values one level off" in recording_mismatch(RECORDED, RECORDED + 1)


def test_the_module_turned_off_fails():
    assert "33 grey levels off" in recording_mismatch(RECORDED, RECORDED - 33)  # the live tier's module: ≈ +33 levels


def test_another_size_fails():
    assert "shape" in recording_mismatch(RECORDED, RECORDED[:32])
