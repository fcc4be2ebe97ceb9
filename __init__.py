"""The ComfyUI node pack entry: ComfyUI imports this folder as a package and reads NODE_CLASS_MAPPINGS.

The webuis (A1111, Forge) import scripts/ only, with this folder on sys.path, and never this file; anything else
that imports it outside a running ComfyUI gets empty mappings and nothing is touched. ComfyUI gives the folder a
package name of its own and leaves sys.path alone, so the engine, whose modules import each other as `sing_core`,
is registered under that name from this folder (and only that name: scripts/, tests/ and the rest stay unseen).
"""

import importlib.util
import sys
from pathlib import Path

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}


def _register_engine() -> None:
    folder = Path(__file__).resolve().parent / "sing_core"
    loaded = sys.modules.get("sing_core")
    if loaded is not None:
        if Path(loaded.__file__).resolve().parent != folder:
            raise ImportError(f"SingDiffusion: another sing_core is already loaded from {loaded.__file__}; keep one "
                              f"copy of this node pack (this one is {folder.parent})")
        return
    spec = importlib.util.spec_from_file_location("sing_core", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["sing_core"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["sing_core"]
        raise


if "comfy" in sys.modules and "folder_paths" in sys.modules and __package__:  # inside a running ComfyUI
    _register_engine()
    from .sing_comfy.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
