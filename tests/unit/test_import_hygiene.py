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
