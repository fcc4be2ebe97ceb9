"""sing_diffusers.hub: a catalogue name fetched through huggingface_hub (a stand-in for its download: no network)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import EntryNotFoundError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the unit tier's tiny OMS release writer
from unet_helpers import TINY_OMS, unet_state, write_oms_release

from sing_core.catalogue import CatalogueError
from sing_core.config import UNetConfig
from sing_core.download import DownloadError
from sing_core.module import SingModule
from sing_diffusers import hub

NAME = "oms_b_openclip_xl"


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """hf_hub_download as huggingface_hub lays its cache out (snapshots/<revision>/<path>), from a local release."""
    torch.manual_seed(0)
    release = write_oms_release(tmp_path / "release", unet_state(SingModule(UNetConfig.from_dict(TINY_OMS))))
    asked = []

    def hf_hub_download(repo_id, filename, *, revision, cache_dir=None):
        asked.append((repo_id, filename, revision))
        source = release / filename
        if not source.is_file():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        dest = Path(cache_dir) / "snapshots" / revision / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
        return str(dest)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", hf_hub_download)
    return release, asked


def test_a_catalogue_name_is_fetched_at_the_catalogue_revision_and_checked(fake_hub, tmp_path):
    _, asked = fake_hub
    root = hub.fetch_from_hub(NAME, cache_dir=tmp_path / "cache")
    assert root == tmp_path / "cache" / "snapshots" / "main"
    assert (root / "model_index.json").is_file()
    assert ("h1t/oms_b_openclip_xl", "oms_module/diffusion_pytorch_model.fp16.safetensors", "main") in asked


def test_fetched_files_that_fail_the_check_are_deleted(fake_hub, tmp_path):
    release, _ = fake_hub
    weights = release / "oms_module/diffusion_pytorch_model.fp16.safetensors"
    weights.write_bytes(weights.read_bytes()[:-500])
    with pytest.raises(DownloadError, match="failed their check and were deleted"):
        hub.fetch_from_hub(NAME, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_only_bare_catalogue_names_go_online(tmp_path, monkeypatch):
    assert hub.is_catalogue_name(NAME)
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()
    assert not hub.is_catalogue_name(NAME)  # a local folder of that name wins
    assert not hub.is_catalogue_name("models/oms_b_openclip_xl")
    with pytest.raises(CatalogueError, match="not on Hugging Face"):
        hub.fetch_from_hub("singdiffusion-sd15")


def test_load_module_takes_a_catalogue_name(fake_hub, tmp_path, monkeypatch):
    import sing_diffusers

    fetch = hub.fetch_from_hub
    monkeypatch.setattr(hub, "fetch_from_hub", lambda name: fetch(name, cache_dir=tmp_path / "cache"))
    loaded = sing_diffusers.load_module(NAME)
    assert loaded.sing.kind.family == "sdxl"
    assert loaded.sing.path == str(tmp_path / "cache" / "snapshots" / "main")
