"""`pip install` of a fresh clone into an empty virtual environment, then docs/python.md's five lines run there.

The clone is of the checkout's committed HEAD. The install is constrained to the versions of this test environment
(pip freeze, torch included: the local CPU build), so it resolves from pip's cache or the registry without ever
pulling a CUDA torch. The example's two models are a tiny random SD-1 pipeline saved with save_pretrained and a
release-format module, both on disk: nothing is downloaded from a hub.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from tiny_pipes import EXAMPLE_MODELS, docs_example

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "sd-webui-singdiffusion"


def run(command: list, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def constraints(folder: Path) -> Path:
    """This environment's versions (torch's local CPU build among them), minus this project itself."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    pins = [line for line in frozen if "==" in line and not line.lower().startswith(PROJECT)]
    path = folder / "constraints.txt"
    path.write_text("\n".join(pins) + "\n")
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a new venv into which a fresh clone was pip-installed with the diffusers extra."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the pip-install test clones the checkout: needs git and a git checkout")
    work = tmp_path_factory.mktemp("pip-install")
    run(["git", "clone", "--quiet", "--no-hardlinks", ROOT, work / "clone"], cwd=work)
    venv.EnvBuilder(with_pip=True, clear=True).create(work / "venv")
    python = work / "venv" / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", constraints(work),
         f"{work / 'clone'}[diffusers]"], cwd=work)
    return python


def test_the_docs_example_runs_in_the_installed_package(installed, tmp_path, sd1_built, module_dir):
    sd1_built.save_pretrained(tmp_path / "sd15")
    code = docs_example()
    for model, local in zip(EXAMPLE_MODELS, (tmp_path / "sd15", module_dir), strict=True):
        code = code.replace(model, str(local))
    (tmp_path / "example.py").write_text(code)
    run([installed, "example.py"], cwd=tmp_path)
    from PIL import Image

    with Image.open(tmp_path / "black.png") as image:
        assert image.size == (16, 16)


def test_the_installed_package_is_the_clone_not_the_checkout(installed, tmp_path):
    code = "import sing_core, sing_diffusers; print(sing_core.__file__); print(sing_diffusers.__file__)"
    where = run([installed, "-c", code], cwd=tmp_path).stdout
    assert all("site-packages" in line for line in where.splitlines())
    assert str(ROOT) not in where


def test_the_console_command_and_python_m(installed, tmp_path, module_dir):
    command = installed.parent / "singdiffusion"
    shown = run([command, "inspect", module_dir], cwd=tmp_path).stdout
    assert "layout:                 release folder (.bin)" in shown
    assert "what it is:             SingDiffusion module for SD-1.x/2.x latents" in shown
    assert "cross-attention width:  32" in shown
    assert run([installed, "-m", "sing_core", "--help"], cwd=tmp_path).stdout.startswith("usage:")


def test_torch_is_the_cpu_build_not_a_cuda_one(installed, tmp_path):
    import torch

    version = run([installed, "-c", "import torch; print(torch.__version__, torch.version.cuda)"], cwd=tmp_path)
    assert version.stdout.split()[0] == torch.__version__
    listed = run([installed, "-m", "pip", "list", "--format=freeze"], cwd=tmp_path).stdout.lower()
    assert "nvidia-" not in listed
