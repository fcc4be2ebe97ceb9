"""`python -m sing_core convert` and `inspect`: the release folder to one file, never touching the source."""

import hashlib

import pytest
import torch
from safetensors import safe_open
from unet_helpers import TINY, tiny_module, torch_threads, unet_state, write_release

from sing_core import load_module
from sing_core.cli import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def release(tmp_path):
    module = tiny_module(TINY)
    return write_release(tmp_path / "SingDiffusion", TINY, unet_state(module)), module


def test_convert_writes_an_equivalent_single_file_and_leaves_the_source_alone(tmp_path, release, capsys):
    folder, module = release
    before = digests(folder)
    dst = tmp_path / "out" / "sing.safetensors"
    assert main(["convert", str(folder), str(dst)]) == 0
    assert digests(folder) == before
    loaded = load_module(dst)
    for key, value in module.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[key], value, rtol=0, atol=0)
    assert str(dst) in capsys.readouterr().out


def test_convert_half(tmp_path, release):
    folder, _ = release
    dst = tmp_path / "half.safetensors"
    assert main(["convert", str(folder), str(dst), "--half"]) == 0
    with safe_open(str(dst), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # noqa: SIM118


def test_convert_refuses_to_overwrite_without_force(tmp_path, release, capsys):
    folder, _ = release
    dst = tmp_path / "sing.safetensors"
    dst.write_bytes(b"keep me")
    assert main(["convert", str(folder), str(dst)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert dst.read_bytes() == b"keep me"
    assert main(["convert", str(folder), str(dst), "--force"]) == 0
    assert load_module(dst).config.cross_attention_dim == 24


def test_convert_never_overwrites_its_source(tmp_path, release, capsys):
    folder, _module = release
    src = tmp_path / "sing.safetensors"
    assert main(["convert", str(folder), str(src)]) == 0
    before = src.read_bytes()
    assert main(["convert", str(src), str(src), "--force", "--half"]) == 1
    assert "the source itself" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_convert_reports_a_bad_source_and_writes_nothing(tmp_path, capsys):
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(tmp_path / "missing"), str(dst)]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert not dst.exists()


def test_convert_needs_a_safetensors_destination(tmp_path, release, capsys):
    assert main(["convert", str(release[0]), str(tmp_path / "out.bin")]) == 1
    assert "must be a .safetensors file" in capsys.readouterr().err


def test_inspect_prints_what_the_module_is(release, capsys):
    folder, module = release
    assert main(["inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    hash_ = hashlib.sha256((folder / "diffusion_pytorch_model.bin").read_bytes()).hexdigest()[:10]
    assert f"{sum(p.numel() for p in module.parameters()):,}" in out
    for fragment in ("release folder (.bin)", hash_, "float32", "latent channels:        4",
                     "cross-attention width:  24", '"cross_attention_dim": 24'):  # fmt: skip
        assert fragment in out


def test_inspect_reports_a_bad_file(tmp_path, capsys):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x00" * 10)
    assert main(["inspect", str(path)]) == 1
    assert f"inspect: {path}" in capsys.readouterr().err
