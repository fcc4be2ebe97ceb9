"""The repository root as a ComfyUI package, imported where ComfyUI is not running, and install.py."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LOAD_AS_PACKAGE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("pack", r"{root}/__init__.py", submodule_search_locations=[r"{root}"])
pack = importlib.util.module_from_spec(spec)
sys.modules["pack"] = pack
path = list(sys.path)
spec.loader.exec_module(pack)
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code.replace("{root}", str(ROOT))], capture_output=True, text=True,
                          cwd="/", check=False)


def test_outside_comfyui_the_root_package_exports_nothing_and_imports_nothing():
    done = run(LOAD_AS_PACKAGE + """
assert pack.NODE_CLASS_MAPPINGS == {} and pack.NODE_DISPLAY_NAME_MAPPINGS == {}
assert not [name for name in sys.modules if name.startswith(("sing_", "pack."))], sorted(sys.modules)
assert sys.path == path
""")
    assert done.returncode == 0, done.stderr


def test_the_engine_is_registered_from_this_folder_only():
    done = run(LOAD_AS_PACKAGE + """
pack._register_engine()
import sing_core.start, sing_core.text
assert sing_core.__file__ == r"{root}/sing_core/__init__.py", sing_core.__file__
assert sys.path == path  # nothing else of the checkout (scripts/, tests/, install.py) became importable
pack._register_engine()  # a second time: the same engine
""")
    assert done.returncode == 0, done.stderr


def test_install_py_runs_without_the_webuis_launch_module():
    done = subprocess.run([sys.executable, str(ROOT / "install.py")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
