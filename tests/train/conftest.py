"""The training tier: sing_train on the CPU (accelerate, webdataset, diffusers' classes), marked `train`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # train_helpers: the tiny SD-1 checkpoint


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.train)
