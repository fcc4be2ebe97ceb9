"""The wheel pip builds from the checkout: every sing_* package and nothing else, with a root __init__.py (ComfyUI
loads the checkout as a package) and another adapter package present; dependencies are lower bounds only."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import sing_core

ROOT = Path(__file__).resolve().parents[2]


def tracked_files() -> list[str]:
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
        return listed.stdout.splitlines()
    skip = {".venv", ".git", "build"}
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.parts)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    for name in tracked_files():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    (source / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")  # what a ComfyUI node pack has at its root
    (source / "sing_comfy").mkdir(exist_ok=True)
    (source / "sing_comfy" / "__init__.py").write_text("")
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(dist), str(source)], check=True, capture_output=True)
    (built,) = dist.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_every_sing_package_and_nothing_else(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    packages = {top for top in tops if not top.endswith(".dist-info")}
    assert packages == {"sing_core", "sing_webui", "sing_diffusers", "sing_comfy", "sing_train"}
    assert "sing_core/text/tokenizer.py" in wheel.namelist()
    assert "sing_core/catalogue.json" in wheel.namelist()  # package data: the module catalogue


def test_dependencies_are_lower_bounds_and_diffusers_is_an_extra(wheel):
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [line.split(":", 1)[1].strip() for line in wheel.read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:")]
    assert "torch>=2.1" in requires
    assert "safetensors>=0.4" in requires
    assert any(r.startswith("diffusers>=") and 'extra == "diffusers"' in r for r in requires)
    # the demo's figure, the bench's chart, training's images and the progress bars: `pip install ...[tools]`
    for tool in ("matplotlib", "pillow", "numpy", "tqdm"):
        assert any(r.startswith(f"{tool}>=") and 'extra == "tools"' in r for r in requires), tool
    # the trainer, sing_train: `pip install ...[train]`
    for tool in ("accelerate", "webdataset", "diffusers", "transformers", "pillow", "tqdm"):
        assert any(r.startswith(f"{tool}>=") and 'extra == "train"' in r for r in requires), tool
    assert not any("==" in r.split(";")[0] for r in requires)


def test_the_console_command_and_the_version(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "singdiffusion = sing_core.cli:main" in wheel.read(entry_points).decode()
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    assert f"Version: {sing_core.__version__}" in wheel.read(metadata).decode()
