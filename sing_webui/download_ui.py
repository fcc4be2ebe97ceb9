"""The "Download" row of the Modules accordion, and what the panel says where no module is installed.

A catalogue module (sing_core/catalogue.json) is fetched only when the user presses Download, with the webui's own
downloader (modules.modelloader.load_file_from_url, the one it uses for upscalers and face restorers: a console
progress bar, a temporary name, moved into place when complete), into the first module folder (models/SingDiffusion).
sing_core.download assembles the module in a hidden staging folder and checks every tensor's name, shape and dtype
against the module's config before the folder gets the module's name; a module that fails is removed with a message.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from sing_core.catalogue import CatalogueError, load_catalogue, suggest
from sing_core.download import DownloadError, RemoteFileMissingError, download_module

NOT_FOUND = 404
KNOWN_FAMILIES = ("SD-1.x", "SD-2.x", "SDXL", "SD3")  # what sing_webui.hosts.*.family names besides class names


def downloadable_names() -> list[str]:
    return [entry.name for entry in load_catalogue().entries if not entry.browser_only]


def webui_fetch(url: str, dest: Path) -> None:
    """One file with the webui's downloader. A1111 raises urllib's HTTPError (.code), Forge requests' (.response)."""
    from modules import modelloader

    try:
        modelloader.load_file_from_url(url, model_dir=str(dest.parent), file_name=dest.name, progress=True)
    except Exception as error:
        status = getattr(error, "code", None) or getattr(getattr(error, "response", None), "status_code", None)
        if status == NOT_FOUND:
            raise RemoteFileMissingError(f"{url}: not found on the server (404)") from error
        raise DownloadError(f"{url}: {error}; press Download again to retry") from error


def run_download(name: str, folder: Path, fetch: Callable[[str, Path], None] = webui_fetch) -> tuple[bool, str]:
    """(installed, message) for the panel; the lines the download logs go to the console as the webui's do."""
    if not name:
        return False, "Choose a module to download."
    try:
        target = download_module(name, folder, fetch=fetch, log=lambda line: print(f"SingDiffusion: {line}"))
    except (CatalogueError, DownloadError) as error:
        return False, str(error)
    entry = load_catalogue().get(name)
    return True, f"{name} is installed at {target} and checked. It needs: {entry.text_needed}."


def no_module_hint(host_family: str | None, roots: list[Path]) -> str:
    """suggest()'s text for the loaded checkpoint and where modules go, as HTML lines in the panel's status style."""
    where = " or ".join(str(root) for root in roots)
    text = (f"{suggest(host_family, also='or Download below')}\nModules go into {where}; after copying one in, "
            "press \U0001f504.")
    lines = "<br>".join(html.escape(line) for line in text.splitlines())
    return f'<span class="singdiffusion-status">{lines}</span>'



def loaded_family() -> str | None:
    """The loaded checkpoint's family ("SD-1.x", "SDXL", ...); None before one is loaded (Forge's placeholder
    model included) or where the webui's flags name none of the families the hint knows."""
    from sing_webui.hosts import webui
    from sing_webui.presets import loaded_model

    model = loaded_model()
    family = webui.family(model) if model is not None else None
    return family if family in KNOWN_FAMILIES else None


def build(script, outputs: list, refresh: Callable[[], tuple]) -> None:
    """Inside the Modules accordion: a catalogue dropdown and Download; `outputs`/`refresh` are the accordion's."""
    import gradio as gr
    from modules.ui_components import FormRow

    from sing_webui import options
    from sing_webui.preset_ui import status

    sizes = ", ".join(f"{e.name} {e.approx_size}" for e in load_catalogue().entries if not e.browser_only)
    with FormRow():
        choice = gr.Dropdown(label="Module to download", choices=downloadable_names(), value=None,
                             elem_id=script.elem_id("download_choice"),
                             info=f"One More Step's modules from Hugging Face ({sizes}); SingDiffusion's own needs a "
                                  "browser: `python -m sing_core catalogue` has its link")
        button = gr.Button("Download", size="sm", elem_id=script.elem_id("download"),
                           tooltip="Downloads into models/SingDiffusion with the webui's downloader, checks every "
                                   "tensor against the module's config, then lists it")

    def download(name, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - gradio's way to show tqdm bars
        del progress
        installed, message = run_download(name, options.module_roots()[0])
        if not installed:
            return gr.update(), gr.update(), gr.update(), status(message, error=True)
        table, choices, modules, _ = refresh()
        return table, choices, modules, status(message)

    button.click(fn=download, inputs=[choice], outputs=outputs)
