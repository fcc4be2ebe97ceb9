"""Converting a release folder in place (what the webui's Modules panel and API do): .bin kept, name kept."""

import hashlib

import pytest
import torch
from unet_helpers import TINY, tiny_module, unet_state, write_release

from sing_core import load_module
from sing_core.checkpoint import save_module
from sing_core.convert import convert_release_folder
from sing_core.library import ModuleLibrary
from sing_core.weights import CheckpointError


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def release(tmp_path):
    module = tiny_module(TINY)
    return write_release(tmp_path / "SingDiffusion" / "release", TINY, unet_state(module)), module


def test_release_folder_gets_a_safetensors_beside_its_bin(release):
    folder, module = release
    bin_path = folder / "diffusion_pytorch_model.bin"
    before = digest(bin_path)
    written = convert_release_folder(folder)
    assert written == folder / "diffusion_pytorch_model.safetensors"
    assert digest(bin_path) == before
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors"]
    library = ModuleLibrary([folder.parent]).refresh()
    assert library.names() == ["release"]
    assert library.entries["release"].weights == written  # the library prefers the converted file
    loaded = load_module(folder)
    for key, value in module.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[key], value, rtol=0, atol=0)


def test_converting_twice_or_a_single_file_is_refused(release, tmp_path):
    folder, _ = release
    convert_release_folder(folder)
    with pytest.raises(CheckpointError, match=r"release: already holds diffusion_pytorch_model\.safetensors"):
        convert_release_folder(folder)
    single = save_module(load_module(folder), None, tmp_path / "single.safetensors")
    with pytest.raises(CheckpointError, match=r"single\.safetensors: a single \.safetensors module file is already"):
        convert_release_folder(single)
