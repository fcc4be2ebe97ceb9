"""run.py's gpu tier: the test tier's requirements, then `python -m sing_core bench gpu` with the given arguments."""

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_run_py():
    spec = importlib.util.spec_from_file_location("run_py", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_tier_installs_the_test_requirements_and_runs_the_check(monkeypatch):
    run_py = load_run_py()
    assert run_py.REQUIREMENTS["gpu"] == run_py.REQUIREMENTS["test"]  # diffusers for the speed rows
    tiers, calls = [], []
    monkeypatch.setattr(run_py, "ensure_env", lambda tier: tiers.append(tier) or Path("/venv/python"))
    monkeypatch.setattr(subprocess, "call", lambda command, cwd: calls.append((command, cwd)) or 0)
    assert run_py.main(["gpu", "--compile", "--out", "gpu-report"]) == 0
    assert tiers == ["gpu"]
    assert calls == [
        ([Path("/venv/python"), "-m", "sing_core", "bench", "gpu", "--compile", "--out", "gpu-report"], run_py.ROOT)
    ]
