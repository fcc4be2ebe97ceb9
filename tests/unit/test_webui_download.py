"""The webui's Download action and its no-module hint, on plain values: the webui's downloader is a stand-in shaped
like modules.modelloader.load_file_from_url (A1111's raises urllib's HTTPError, Forge's requests' HTTPError)."""

from __future__ import annotations

import shutil
import sys
import types
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hub_server import HubServer
from test_download import NAME, WEIGHTS, oms_state
from unet_helpers import write_oms_release

from sing_core.catalogue import load_catalogue
from sing_core.download import RemoteFileMissingError
from sing_webui import download_ui


def load_file_from_url(url: str, *, model_dir: str, progress: bool = True, file_name: str | None = None) -> str:
    """What both webuis' downloader does: fetch to a temporary name, move into place when complete."""
    dest = Path(model_dir) / file_name
    if not dest.exists():
        temp = dest.with_name(file_name + ".tmp")
        with urllib.request.urlopen(url) as response:
            temp.write_bytes(response.read())
        temp.replace(dest)
    return str(dest)


@pytest.fixture
def webui_downloader(monkeypatch):
    modelloader = types.SimpleNamespace(load_file_from_url=load_file_from_url)
    monkeypatch.setitem(sys.modules, "modules", types.SimpleNamespace(modelloader=modelloader))
    monkeypatch.setitem(sys.modules, "modules.modelloader", modelloader)
    return modelloader


@pytest.fixture
def hub(tmp_path, monkeypatch):
    entry = load_catalogue().get(NAME)
    release = write_oms_release(tmp_path / "hub" / entry.hub_repo / "resolve" / entry.fetch_revision, oms_state())
    server = HubServer(tmp_path / "hub")
    server.release = release
    monkeypatch.setenv("SINGDIFFUSION_DOWNLOAD_URL", server.base_url)
    yield server
    server.close()


def test_download_installs_through_the_webuis_downloader_into_the_module_folder(hub, webui_downloader, tmp_path):
    installed, message = download_ui.run_download(NAME, tmp_path / "SingDiffusion")
    assert installed, message
    assert (tmp_path / "SingDiffusion" / NAME / WEIGHTS).read_bytes() == (hub.release / WEIGHTS).read_bytes()
    assert "OpenCLIP ViT-H/14" in message  # what else the module needs
    assert [p.name for p in (tmp_path / "SingDiffusion").iterdir()] == [NAME]


def test_a_module_failing_its_check_is_refused_with_a_message_and_nothing_is_left(hub, webui_downloader, tmp_path):
    data = (hub.release / WEIGHTS).read_bytes()
    (hub.release / WEIGHTS).write_bytes(data[:-100])
    installed, message = download_ui.run_download(NAME, tmp_path / "SingDiffusion")
    assert not installed
    assert "failed its check and was removed" in message
    assert list((tmp_path / "SingDiffusion").iterdir()) == []


def test_a_404_from_either_webuis_downloader_is_a_missing_file(webui_downloader, tmp_path):
    a1111 = urllib.error.HTTPError("http://x/f", 404, "Not Found", None, None)
    forge = RuntimeError("404 Client Error")
    forge.response = types.SimpleNamespace(status_code=404)
    for error in (a1111, forge):
        def fail(*_, error=error, **__):
            raise error
        webui_downloader.load_file_from_url = fail
        with pytest.raises(RemoteFileMissingError):
            download_ui.webui_fetch("http://x/f", tmp_path / "f")


def test_the_drive_module_and_no_choice_answer_with_what_to_do(tmp_path):
    assert download_ui.run_download("", tmp_path) == (False, "Choose a module to download.")
    installed, message = download_ui.run_download("singdiffusion-sd15", tmp_path)
    assert not installed
    assert "drive.google.com" in message
    assert "singdiffusion-sd15" not in download_ui.downloadable_names()


def test_the_no_module_hint_fits_the_loaded_checkpoint_and_says_where_modules_go(tmp_path):
    hint = download_ui.no_module_hint("SDXL", [tmp_path / "SingDiffusion"])
    assert "oms_b_openclip_xl" in hint
    assert "singdiffusion-sd15" not in hint
    assert f"Modules go into {tmp_path / 'SingDiffusion'}" in hint
    assert "<br>" in hint


def test_an_installed_module_is_checked_and_kept_without_the_server(hub, webui_downloader, tmp_path):
    assert download_ui.run_download(NAME, tmp_path / "SingDiffusion")[0]
    shutil.rmtree(hub.release)
    installed, message = download_ui.run_download(NAME, tmp_path / "SingDiffusion")
    assert installed, message  # already there: checked, not fetched again
