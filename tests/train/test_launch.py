"""The launch's decisions: mixed precision from the launcher or --dtype, the rank in a failure."""

from __future__ import annotations

import pytest

from sing_train.commands.train import process_label
from sing_train.parallel import LaunchError, choose_mixed_precision


def test_mixed_precision_comes_from_the_launcher_or_dtype_and_a_contradiction_stops():
    assert choose_mixed_precision(None, None) == "no"
    assert choose_mixed_precision("bf16", None) == "bf16"
    assert choose_mixed_precision(None, "fp16") == "fp16"  # accelerate launch --mixed_precision fp16
    assert choose_mixed_precision("fp16", "fp16") == "fp16"
    assert choose_mixed_precision("fp32", "no") == "no"
    with pytest.raises(LaunchError, match="--dtype bf16 contradicts the launcher's mixed precision 'fp16'"):
        choose_mixed_precision("bf16", "fp16")
    with pytest.raises(LaunchError, match="'fp8'"):
        choose_mixed_precision(None, "fp8")


def test_a_failure_names_its_process_inside_a_launch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert process_label() == ""
    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("RANK", "3")
    assert process_label() == " (process 3 of 16)"
