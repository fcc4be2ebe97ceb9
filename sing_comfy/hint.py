"""What the module loader says where models/singdiffusion/ holds no module: the known modules and how to get each.

The loader cannot know the checkpoint (it has no MODEL input), so every module of the catalogue is listed with the
latent family it serves; the download command is given with ComfyUI's folder.
"""

from __future__ import annotations

from pathlib import Path

from sing_core.catalogue import suggest

LOADER_TOOLTIP = "A module in models/singdiffusion/"


def loader_tooltip(names: list[str], folder: str) -> str:
    """The module_name input's tooltip: plain where modules are installed, else how to get one."""
    return LOADER_TOOLTIP if names else no_module_text(folder)


PACK_FOLDER = Path(__file__).resolve().parents[1]  # python -m sing_core runs from here (custom_nodes/<this pack>)


def no_module_text(folder: str) -> str:
    return (f"{suggest(None, folder=folder)}\nRun the download commands in {PACK_FOLDER} with ComfyUI's Python; put "
            f"a module into {folder}, then refresh (R) so the list shows it.")
