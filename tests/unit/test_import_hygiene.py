import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("modules", "gradio", "diffusers", "transformers", "ldm", "k_diffusion", "sgm", "launch")
TOOL_LIBRARIES = ("matplotlib", "tqdm", "PIL")  # the demo's, bench's and training's (requirements/tools.txt)
IMPORT_ALL_OF_SING_CORE = (
    "import sing_core, pkgutil, importlib\n"
    "for m in pkgutil.walk_packages(sing_core.__path__, 'sing_core.'):\n"
    "    if not m.name.endswith('__main__'):\n"
    "        importlib.import_module(m.name)\n"
)


def modules_loaded_by(code: str) -> set[str]:
    """sys.modules after running `code` in a fresh interpreter from the project's root."""
    code += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_sing_core_loads_no_host_or_reference_library():
    loaded = modules_loaded_by(IMPORT_ALL_OF_SING_CORE)
    offenders = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert "sing_core" in loaded


def test_importing_sing_core_loads_none_of_the_tools_libraries():
    """They are imported where a figure is drawn, a bar shown or an image read, never at import of sing_core."""
    loaded = modules_loaded_by(IMPORT_ALL_OF_SING_CORE)
    assert "sing_core.figures" in loaded  # the walk reached the module that draws
    # torch itself may load some (torch.hub imports tqdm when it is installed): only what sing_core adds counts
    by_torch = modules_loaded_by("import torch, safetensors.torch")
    assert sorted(m for m in loaded - by_torch if m.split(".")[0] in TOOL_LIBRARIES) == []


def test_the_webui_adapter_never_imports_the_tools_libraries():
    """Read from the source (the adapter needs a webui to import): not at its top, not inside a function."""
    files = sorted([*(ROOT / "sing_webui").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in TOOL_LIBRARIES, f"{path}: imports {name}"
                assert name not in ("sing_core.figures", "sing_core.progress"), f"{path}: imports {name}"
