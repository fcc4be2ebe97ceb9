import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("modules", "gradio", "diffusers", "transformers", "ldm", "k_diffusion", "sgm", "launch")


def test_importing_sing_core_loads_no_host_or_reference_library():
    code = (
        "import json, sys, pkgutil, importlib, sing_core\n"
        "for m in pkgutil.walk_packages(sing_core.__path__, 'sing_core.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    offenders = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert "sing_core" in loaded


TOOL_LIBRARIES = ("matplotlib", "tqdm", "PIL")  # the demo's, bench's and training's (requirements/tools.txt)


def test_importing_sing_core_loads_none_of_the_tools_libraries():
    """They are imported where a figure is drawn, a bar shown or an image read, never at import of sing_core."""
    code = (
        "import json, sys, pkgutil, importlib, sing_core\n"
        "for m in pkgutil.walk_packages(sing_core.__path__, 'sing_core.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "sing_core.figures" in loaded  # the walk reached the module that draws
    # torch itself may load some (torch.hub imports tqdm when it is installed): only what sing_core adds counts
    torch_only = "import json, sys, torch, safetensors.torch\nprint(json.dumps(sorted(sys.modules)))"
    baseline = subprocess.run([sys.executable, "-c", torch_only], capture_output=True, text=True, check=True)
    by_torch = set(json.loads(baseline.stdout.strip().splitlines()[-1]))
    assert [m for m in loaded if m.split(".")[0] in TOOL_LIBRARIES and m not in by_torch] == []


def test_the_webui_adapter_never_imports_the_tools_libraries():
    """Read from the source (the adapter needs a webui to import): not at its top, not inside a function."""
    import ast

    files = sorted([*(ROOT / "sing_webui").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in TOOL_LIBRARIES, f"{path}: imports {name}"
                assert name not in ("sing_core.figures", "sing_core.progress"), f"{path}: imports {name}"
