"""What the registries read: LICENSE, pyproject's [tool.comfy] and node id, the icon, the A1111 index entry, and the
root package imported from a folder named as ComfyUI-Manager names it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib  # Python 3.11+, which run.py's .venv and every host have
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = PYPROJECT["project"]["urls"]["Repository"]
# AUTOMATIC1111/stable-diffusion-webui-extensions, tags.json: the only tags its validate.py accepts.
A1111_INDEX_TAGS = {"script", "localization", "tab", "dropdown", "ads", "installed", "training", "models", "UI related",
                    "prompting", "editing", "manipulations", "online", "animation", "query", "science", "extras"}
# The Comfy Registry's node id rules (docs.comfy.org/registry/specifications, [project] name).
NODE_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9]))*$")


def test_the_license_file_is_the_mit_license_pyproject_names():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 sd-webui-singdiffusion contributors" in text
    assert PYPROJECT["project"]["license"] == {"file": "LICENSE"}


def test_the_project_name_is_a_valid_comfy_registry_node_id():
    name = PYPROJECT["project"]["name"]
    assert len(name) < 100
    assert NODE_ID.match(name), name
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PYPROJECT["project"]["version"])


@pytest.mark.parametrize("bad", ["123-tool", "my--node", "-node", "node_", "a b"])
def test_the_node_id_rule_refuses_what_the_registry_refuses(bad):
    assert not NODE_ID.match(bad)


def test_tool_comfy_names_the_publisher_display_name_and_a_square_icon_of_this_repository():
    comfy = PYPROJECT["tool"]["comfy"]
    assert comfy["PublisherId"] == "singdiffusion"
    assert comfy["DisplayName"] == "SingDiffusion"
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    assert comfy["Icon"] == f"https://raw.githubusercontent.com/{owner_repo}/main/docs/icon.png"
    with Image.open(ROOT / "docs/icon.png") as icon:
        assert icon.width == icon.height <= 400


def test_the_a1111_index_entry_is_ready_to_submit():
    entry = json.loads((ROOT / "docs/extension-index.json").read_text(encoding="utf-8"))
    assert set(entry) == {"name", "url", "description", "tags"}
    assert entry["url"] == REPOSITORY + ".git"
    assert entry["tags"]
    assert set(entry["tags"]) <= A1111_INDEX_TAGS
    assert "SD 1" in entry["description"] or "Stable Diffusion 1" in entry["description"]


# ComfyUI v0.33's nodes.load_custom_node, as it imports a folder under custom_nodes/ (the module is named after the
# whole path with "." made "_x_"), with small stand-ins for the ComfyUI modules the pack imports at load.
LOAD_LIKE_COMFYUI = """
import importlib.util, os, sys, types
models = sys.argv[2]
comfy = types.ModuleType("comfy"); comfy.__path__ = []
for name in ("patcher_extension", "model_patcher", "model_management", "samplers", "model_sampling", "sample"):
    part = types.ModuleType("comfy." + name); setattr(comfy, name, part); sys.modules["comfy." + name] = part
comfy.patcher_extension.WrappersMP = types.SimpleNamespace(OUTER_SAMPLE="outer_sample", SAMPLER_SAMPLE="sampler_sample")
comfy.model_patcher.ModelPatcher = object
sys.modules["comfy"] = comfy
folder_paths = types.ModuleType("folder_paths"); folder_paths.models_dir = models; paths = {}
folder_paths.add_model_folder_path = lambda key, path, is_default=False: paths.setdefault(key, []).append(path)
folder_paths.get_folder_paths = lambda key: paths[key]
sys.modules["folder_paths"] = folder_paths
module_path = sys.argv[1]
sys_module_name = module_path.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(sys_module_name, os.path.join(module_path, "__init__.py"))
module = importlib.util.module_from_spec(spec)
sys.modules[sys_module_name] = module
spec.loader.exec_module(module)
print(sorted(module.NODE_CLASS_MAPPINGS))
"""


@pytest.mark.parametrize("folder", [PYPROJECT["project"]["name"], "sd-webui-singdiffusion.git-main"])
def test_the_pack_loads_from_a_folder_named_as_comfyui_manager_names_it(tmp_path, folder):
    # ComfyUI-Manager installs a registry node into custom_nodes/<node id> and a git URL into custom_nodes/<repo name>:
    # dashes (and dots) in the folder name must not stop the root __init__.py from importing its adapter.
    (tmp_path / "custom_nodes").mkdir()
    link = tmp_path / "custom_nodes" / folder
    link.symlink_to(ROOT, target_is_directory=True)
    done = subprocess.run([sys.executable, "-c", LOAD_LIKE_COMFYUI, str(link), str(tmp_path / "models")],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "SingDiffusionApply" in done.stdout
    assert "SingDiffusionModuleLoader" in done.stdout
