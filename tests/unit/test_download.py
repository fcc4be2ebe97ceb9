"""Downloading a catalogue module against a local server of Hugging Face's layout: resumable, never half installed,
checked against its own config before it is kept."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from hub_server import HubServer
from safetensors.torch import save_file
from unet_helpers import TINY_OMS, unet_state, write_oms_release

from sing_core.catalogue import CatalogueError, load_catalogue
from sing_core.checkpoint import describe
from sing_core.cli import main
from sing_core.config import UNetConfig
from sing_core.download import DownloadError, download_module, staging_folder
from sing_core.library import ModuleLibrary
from sing_core.module import SingModule

NAME = "oms_b_openclip_xl"
WEIGHTS = "oms_module/diffusion_pytorch_model.fp16.safetensors"


def oms_state(config: dict = TINY_OMS, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return unet_state(SingModule(UNetConfig.from_dict(config)))


@pytest.fixture
def hub(tmp_path):
    """The release of NAME as the server has it (no tokenizer files: those are optional), served on 127.0.0.1."""
    entry = load_catalogue().get(NAME)
    release = write_oms_release(tmp_path / "hub" / entry.hub_repo / "resolve" / entry.fetch_revision, oms_state())
    server = HubServer(tmp_path / "hub")
    server.release = release
    server.url_of = lambda path: f"/{entry.hub_repo}/resolve/{entry.fetch_revision}/{path}"
    yield server
    server.close()


def test_a_download_is_checked_and_installed_under_its_name(hub, tmp_path):
    lines = []
    target = download_module(NAME, tmp_path / "models", base_url=hub.base_url, log=lines.append)
    assert target == tmp_path / "models" / NAME
    assert (target / WEIGHTS).read_bytes() == (hub.release / WEIGHTS).read_bytes()
    assert describe(target).module_kind == load_catalogue().get(NAME).kind
    assert [p.name for p in (tmp_path / "models").iterdir()] == [NAME]  # no staging folder, no .part left
    assert any("oms_tokenizer/vocab.json: not on the server, skipped" in line for line in lines)
    assert not (target / "oms_tokenizer").exists()  # no empty folder for the files the server lacked


def test_an_interrupted_download_leaves_nothing_under_the_name_and_resumes(hub, tmp_path):
    weights_size = (hub.release / WEIGHTS).stat().st_size
    hub.cut_after[hub.url_of(WEIGHTS)] = weights_size // 3
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match=r"run the download again to resume"):
        download_module(NAME, models, base_url=hub.base_url, log=lambda _: None)
    assert not (models / NAME).exists()
    part = staging_folder(models / NAME) / (WEIGHTS + ".part")
    assert part.stat().st_size == weights_size // 3
    assert ModuleLibrary([models]).refresh().names() == []  # no host lists the half module

    target = download_module(NAME, models, base_url=hub.base_url, log=lambda _: None)
    assert (hub.url_of(WEIGHTS), f"bytes={weights_size // 3}-") in hub.requests  # resumed, not started over
    assert (target / WEIGHTS).read_bytes() == (hub.release / WEIGHTS).read_bytes()
    assert not staging_folder(models / NAME).exists()


def test_a_module_that_does_not_fit_its_config_is_refused_and_removed(hub, tmp_path):
    wider = {**TINY_OMS, "block_out_channels": [16, 32, 48]}
    save_file({k: v.half().contiguous() for k, v in oms_state(wider).items()}, str(hub.release / WEIGHTS))
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match=r"failed its check and was removed.*wrong shapes"):
        download_module(NAME, models, base_url=hub.base_url, log=lambda _: None)
    assert not models.exists() or list(models.iterdir()) == []


def test_a_file_cut_short_on_the_server_is_refused_and_removed(hub, tmp_path):
    data = (hub.release / WEIGHTS).read_bytes()
    (hub.release / WEIGHTS).write_bytes(data[: len(data) - 1000])  # whole header, missing tensor bytes
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match=r"where its header describes"):
        download_module(NAME, models, base_url=hub.base_url, log=lambda _: None)
    assert not models.exists() or list(models.iterdir()) == []


def test_a_module_of_another_kind_than_the_catalogue_says_is_refused(hub, tmp_path):
    index = json.loads((hub.release / "model_index.json").read_text())
    index["sd_pipeline"] = ["stable_diffusion", "StableDiffusionPipeline"]  # an SD-1.x/2.x module under the XL name
    (hub.release / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(DownloadError, match=r"SD-1.x/2.x latents.*the catalogue a One More Step module for SDXL"):
        download_module(NAME, tmp_path / "models", base_url=hub.base_url, log=lambda _: None)
    assert not (tmp_path / "models" / NAME).exists()


def test_a_missing_required_file_names_the_file_and_the_source_page(hub, tmp_path):
    shutil.rmtree(hub.release / "oms_module")
    with pytest.raises(DownloadError, match=r"oms_module/config.json: not found.*huggingface.co/h1t/oms_b_openclip_xl"):
        download_module(NAME, tmp_path / "models", base_url=hub.base_url, log=lambda _: None)
    assert not (tmp_path / "models" / NAME).exists()


def test_an_installed_module_is_checked_and_kept_without_a_request(hub, tmp_path):
    target = download_module(NAME, tmp_path / "models", base_url=hub.base_url, log=lambda _: None)
    asked = len(hub.requests)
    assert download_module(NAME, tmp_path / "models", base_url=hub.base_url, log=lambda _: None) == target
    assert len(hub.requests) == asked


def test_the_drive_module_is_not_downloaded_but_explained():
    with pytest.raises(CatalogueError, match=r"browser.*drive.google.com"):
        download_module("singdiffusion-sd15", "/nonexistent", log=lambda _: None)


def test_the_command_downloads_with_a_progress_bar_and_the_base_url_from_the_environment(hub, tmp_path, capsys,
                                                                                           monkeypatch):
    monkeypatch.setenv("SINGDIFFUSION_DOWNLOAD_URL", hub.base_url)
    assert main(["download", NAME, "--dir", str(tmp_path / "models")]) == 0
    err = capsys.readouterr().err
    assert "diffusion_pytorch_model.fp16.safetensors" in err  # the bar's label
    assert f"{NAME}: checked and installed" in err
    assert main(["download", "no_such_module", "--dir", str(tmp_path / "models")]) == 1
    assert "known: singdiffusion-sd15, oms_b_openclip_15_21" in capsys.readouterr().err


def test_without_dir_a_checkout_in_a_host_downloads_into_the_hosts_module_folder(tmp_path):
    from sing_core.commands.download import DEFAULT_DIR, default_dir

    assert default_dir(tmp_path / "webui/extensions/sd-webui-singdiffusion") == tmp_path / "webui/models/SingDiffusion"
    assert default_dir(tmp_path / "ComfyUI/custom_nodes/sd-webui-singdiffusion") == \
        tmp_path / "ComfyUI/models/singdiffusion"
    assert default_dir(tmp_path / "src/sd-webui-singdiffusion") == DEFAULT_DIR
