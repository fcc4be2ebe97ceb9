"""The ComfyUI loader where models/singdiffusion/ is empty: its tooltip and its validation say how to get a module."""

from __future__ import annotations

import subprocess
import sys

from test_registries import LOAD_LIKE_COMFYUI, ROOT

from sing_comfy import hint
from sing_core.catalogue import load_catalogue

LOADER_WITHOUT_MODULES = LOAD_LIKE_COMFYUI + """
loader = module.NODE_CLASS_MAPPINGS["SingDiffusionModuleLoader"]
names, spec = loader.INPUT_TYPES()["required"]["module_name"]
assert names == [], names
print("TOOLTIP", spec["tooltip"])
print("VALIDATION", loader.VALIDATE_INPUTS("oms_b_openclip_xl"))
"""


def test_without_modules_the_tooltip_lists_every_module_with_comfyuis_folder(tmp_path):
    text = hint.loader_tooltip([], str(tmp_path / "models/singdiffusion"))
    for entry in load_catalogue().entries:
        assert f"- {entry.name} (" in text
    assert f"python -m sing_core download oms_b_openclip_xl --dir {tmp_path / 'models/singdiffusion'}" in text
    assert "refresh (R)" in text
    assert hint.loader_tooltip(["mine"], "x") == hint.LOADER_TOOLTIP


def test_the_loader_node_says_it_in_its_tooltip_and_its_validation(tmp_path):
    (tmp_path / "custom_nodes").mkdir()
    link = tmp_path / "custom_nodes" / "sd-webui-singdiffusion"
    link.symlink_to(ROOT, target_is_directory=True)
    models = tmp_path / "models"
    done = subprocess.run([sys.executable, "-c", LOADER_WITHOUT_MODULES, str(link), str(models)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    tooltip = done.stdout.split("TOOLTIP", 1)[1].split("VALIDATION", 1)[0]
    validation = done.stdout.split("VALIDATION", 1)[1]
    assert f"--dir {models / 'singdiffusion'}" in tooltip
    assert "is not installed" in validation
    assert "oms_b_openclip_xl (One More Step, for SDXL" in validation
