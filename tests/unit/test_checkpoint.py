"""Loading, saving, hashing and describing module files, and every bad file the loader must refuse clearly."""

import builtins
import hashlib
import json
import os
import pickle
import zipfile

import pytest
import safetensors
import safetensors.torch
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from unet_helpers import TINY, TINY_SD2, tiny_module, torch_threads, unet_state, write_release

from sing_core import CheckpointError, describe, load_module, save_module, short_hash


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


@pytest.fixture
def release(tmp_path):
    module = tiny_module(TINY)
    return write_release(tmp_path / "SingDiffusion", TINY, unet_state(module)), module


def forward(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return module(torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 24, generator=g))


def assert_same_weights(a, b):
    sa, sb = a.unet.state_dict(), b.unet.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0)


# --- loading what the release ships ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["bin", "safetensors"])
def test_release_folder_loads_ignoring_the_time_embedding(tmp_path, weights):
    module = tiny_module(TINY_SD2)
    folder = write_release(tmp_path / "rel", TINY_SD2, unet_state(module), weights=weights)
    loaded = load_module(folder)
    assert_same_weights(loaded, module)
    assert loaded.config == module.config
    assert (loaded.name, loaded.path) == ("rel", str(folder))
    assert (
        loaded.short_hash
        == hashlib.sha256(next(folder.glob("diffusion_pytorch_model.*")).read_bytes()).hexdigest()[:10]
    )
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())


def test_the_weights_file_path_means_its_folder(release):
    folder, module = release
    assert_same_weights(load_module(folder / "diffusion_pytorch_model.bin"), module)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_load_casts_to_the_requested_dtype(release, dtype):
    folder, _ = release
    loaded = load_module(folder, dtype=dtype)
    assert loaded.dtype == dtype
    assert all(p.dtype == dtype for p in loaded.parameters())


def test_unsupported_load_dtype_is_refused(release):
    with pytest.raises(CheckpointError, match=r"dtype=torch.int8.*float32, float16 and bfloat16"):
        load_module(release[0], dtype=torch.int8)


# --- our single file --------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    module = tiny_module(TINY_SD2)
    path = save_module(module, None, tmp_path / "sing.safetensors")
    loaded = load_module(path)
    assert_same_weights(loaded, module)
    assert loaded.config == module.config
    assert (loaded.name, loaded.short_hash) == ("sing", short_hash(path))
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        assert not any(k.startswith("time_") or ".time_emb_proj." in k for k in f.keys())  # noqa: SIM118
    assert metadata["format"] == "pt"
    assert metadata["singdiffusion_format"] == "1"
    assert json.loads(metadata["singdiffusion_config"]) == module.config.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["sing.safetensors"]  # no temp file left behind


def test_save_accepts_a_diffusers_state_dict_with_time_keys_and_a_config_dict(tmp_path, release):
    folder, module = release
    state = torch.load(folder / "diffusion_pytorch_model.bin", weights_only=True)
    path = save_module(state, TINY, tmp_path / "from_state.safetensors")
    assert_same_weights(load_module(path), module)


def test_half_save_stores_float16_close_to_the_original(tmp_path):
    module = tiny_module(TINY)
    path = save_module(module, None, tmp_path / "half.safetensors", half=True)
    with safe_open(str(path), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # noqa: SIM118
    loaded = load_module(path)
    assert loaded.dtype == torch.float32
    reference = forward(module)
    assert (forward(loaded) - reference).abs().max() <= 0.01 * reference.abs().max()


def test_half_save_refuses_weights_that_overflow_float16(tmp_path):
    module = tiny_module(TINY)
    with torch.no_grad():
        module.unet.conv_out.bias[0] = 1e6
    with pytest.raises(
        CheckpointError,
        match=r"half.safetensors, half=True\): tensor conv_out.bias contains NaN or inf; it overflows float16",
    ):
        save_module(module, None, tmp_path / "half.safetensors", half=True)
    assert list(tmp_path.iterdir()) == []


def test_text_encoder_rides_along_and_the_unet_loader_ignores_it(tmp_path):
    module = tiny_module(TINY)
    text_state = {"text_model.embeddings.token_embedding.weight": torch.randn(10, 24)}
    text_config = {"hidden_size": 24, "model_type": "clip_text_model"}
    path = save_module(module, None, tmp_path / "with_text.safetensors", text_encoder_state=text_state,
                       text_encoder_config=text_config)  # fmt: skip
    with safe_open(str(path), framework="pt") as f:
        assert "text_encoder.text_model.embeddings.token_embedding.weight" in f.keys()  # noqa: SIM118
        assert json.loads(f.metadata()["text_encoder_config"]) == text_config
    assert_same_weights(load_module(path), module)
    assert describe(path).has_text_encoder


def test_save_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = save_module(tiny_module(TINY, seed=1), None, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def failing_save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as f:  # noqa: PTH123
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_module(tiny_module(TINY, seed=2), None, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_save_refuses_a_state_that_does_not_fit_the_config(tmp_path):
    state = unet_state(tiny_module(TINY))
    del state["conv_in.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys 1 \(conv_in.weight\)"):
        save_module(state, TINY, tmp_path / "m.safetensors")


# --- hash and describe ------------------------------------------------------------------------------------------


def test_short_hash_is_the_sha256_prefix_and_follows_file_changes(tmp_path):
    path = save_module(tiny_module(TINY, seed=1), None, tmp_path / "m.safetensors")
    assert short_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    save_module(tiny_module(TINY, seed=2), None, path)
    os.utime(path, ns=(1, 1))  # a new version even if the clock did not tick
    assert short_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def test_short_hash_reads_the_file_once_per_version(tmp_path, monkeypatch):
    path = save_module(tiny_module(TINY), None, tmp_path / "m.safetensors")
    short_hash(path)
    monkeypatch.setattr(hashlib, "sha256", lambda: pytest.fail("hashed again"))
    short_hash(path)


class _AnyGlobal(pickle.Unpickler):
    """Walks a pickle without building anything real: every global and storage becomes None."""

    def find_class(self, module, name):
        return lambda *args, **kwargs: None

    def persistent_load(self, pid):
        return None


def strip_storages(weights):
    """The .bin without its tensor data: the zip without its data/ members, a legacy file cut after the pickles
    that describe it (magic number, protocol, system info, structure). torch can no longer load it."""
    if zipfile.is_zipfile(weights):
        with zipfile.ZipFile(weights) as source:
            members = {n: source.read(n) for n in source.namelist() if "/data/" not in n}
        assert len(members) < len(zipfile.ZipFile(weights).namelist())
        with zipfile.ZipFile(weights, "w") as stripped:
            for name, data in members.items():
                stripped.writestr(name, data)
    else:
        with weights.open("rb") as file:
            for _ in range(4):
                _AnyGlobal(file).load()
            header = file.tell()
        assert header < weights.stat().st_size / 10
        weights.write_bytes(weights.read_bytes()[:header])


class NoTensorReads:
    """A safetensors handle whose tensors and slices cannot be read (names, dtypes, shapes and metadata can)."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        self.handle.__enter__()
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)

    def get_tensor(self, key):
        pytest.fail(f"describe read the tensor {key}")

    def get_slice(self, key):
        return NoSliceReads(self.handle.get_slice(key), key)

    def __getattr__(self, name):
        return getattr(self.handle, name)


class NoSliceReads:
    def __init__(self, handle, key):
        self.handle, self.key = handle, key

    def __getitem__(self, index):
        pytest.fail(f"describe read data of {self.key}")

    def __getattr__(self, name):
        return getattr(self.handle, name)


@pytest.mark.parametrize("layout", ["bin", "legacy-bin", "single"])
def test_describe_reads_headers_only(tmp_path, monkeypatch, layout):
    """describe() reads the config and the weights' header only (its docstring says what): for a .bin its storages
    are removed first, so describing works only if they are never read; a .safetensors refuses every tensor read."""
    module = tiny_module(TINY)
    if layout == "single":
        path = weights = save_module(module, None, tmp_path / "m.safetensors", half=True)
        real_open = safetensors.safe_open
        for owner in (safetensors, safetensors.torch):
            monkeypatch.setattr(owner, "safe_open", lambda *a, **k: NoTensorReads(real_open(*a, **k)))
    else:
        path = write_release(tmp_path / "rel", TINY, unet_state(module))
        weights = path / "diffusion_pytorch_model.bin"
        if layout == "legacy-bin":
            torch.save(unet_state(module), weights, _use_new_zipfile_serialization=False)
        strip_storages(weights)
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_module(path)  # the tensor data is gone
    info = describe(path)
    assert info.config == module.config
    assert info.parameter_count == sum(p.numel() for p in module.parameters())
    assert info.dtype == ("float32" if layout != "single" else "float16")
    assert (info.latent_channels, info.cross_attention_dim) == (4, 24)
    assert info.short_hash == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    assert info.size_bytes >= weights.stat().st_size
    assert not info.has_text_encoder


@pytest.mark.parametrize("reader", [load_module, describe])
def test_bad_bin_files_are_refused_alike_by_the_loader_and_by_describe(tmp_path, reader):
    marker = tmp_path / "pwned"
    cases = {  # the message, how to spoil the file, and what else the message names
        "truncated or corrupt .bin": (lambda w: w.write_bytes(w.read_bytes()[:1000]), "download it again"),
        "refused to unpickle": (lambda w: torch.save({"payload": CreatesAFileWhenUnpickled(marker)}, w), "exec"),
        "not a state dict": (lambda w: torch.save([torch.zeros(1)], w), "a mapping of names to tensors"),
    }
    for i, (message, (spoil, named)) in enumerate(cases.items()):
        folder = write_release(tmp_path / f"rel{i}", TINY, unet_state(tiny_module(TINY)))
        weights = folder / "diffusion_pytorch_model.bin"
        spoil(weights)
        with pytest.raises(CheckpointError, match=message) as error:
            reader(folder)
        assert str(weights) in str(error.value)
        assert named in str(error.value)
    assert not marker.exists()


# --- bad files: each error names the file and the cause ---------------------------------------------------------


def expect_error(path, *fragments, shown=None):
    with pytest.raises(CheckpointError) as error:
        load_module(path)
    message = str(error.value)
    assert str(shown or path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_missing_path(tmp_path):
    expect_error(tmp_path / "nowhere", "no such file or folder")


def test_folder_without_config(release):
    folder, _ = release
    (folder / "config.json").unlink()
    expect_error(folder, "missing config.json")


def test_folder_without_weights(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    expect_error(folder, "no diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin")


def test_invalid_json_config(release):
    folder, _ = release
    (folder / "config.json").write_text("{not json")
    expect_error(folder, "not valid JSON", shown=folder / "config.json")


def test_unsupported_config_value_names_the_file(release):
    folder, _ = release
    (folder / "config.json").write_text(json.dumps({**TINY, "class_embed_type": "timestep"}))
    expect_error(folder, "class_embed_type = 'timestep'", shown=folder / "config.json")


def test_truncated_safetensors(tmp_path):
    path = save_module(tiny_module(TINY), None, tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    expect_error(path, "truncated or corrupt safetensors")


def test_garbage_safetensors(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\xff" * 64)
    expect_error(path, "truncated or corrupt safetensors")


def test_truncated_bin(release):
    folder, _ = release
    weights = folder / "diffusion_pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[:1000])
    expect_error(folder, "truncated or corrupt .bin", shown=weights)


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file(unet_state(tiny_module(TINY)), str(path))
    expect_error(path, "not a SingDiffusion module file", "python -m sing_core convert")


def test_invalid_config_in_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file(unet_state(tiny_module(TINY)), str(path), metadata={"singdiffusion_config": "{"})
    expect_error(path, "singdiffusion_config", "not valid JSON")


def test_not_a_module_file(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"x")
    expect_error(path, "not a module file (.ckpt)")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weight_names_the_tensor(tmp_path, bad):
    state = unet_state(tiny_module(TINY))
    state["mid_block.resnets.1.conv2.weight"][0, 0, 0, 0] = bad
    folder = write_release(tmp_path / "rel", TINY, state)
    expect_error(folder, "mid_block.resnets.1.conv2.weight contains NaN or inf", shown=folder)


def test_missing_keys_are_listed_with_a_count(tmp_path):
    state = unet_state(tiny_module(TINY))
    missing = sorted(k for k in state if k.startswith("up_blocks.2.attentions.0.transformer_blocks.0."))
    for key in missing:
        del state[key]
    folder = write_release(tmp_path / "rel", TINY, state)
    message = expect_error(folder, f"missing keys {len(missing)} ({missing[0]}", shown=folder)
    assert "…" in message  # more than the first five


def test_unexpected_key(tmp_path):
    state = unet_state(tiny_module(TINY)) | {"class_embedding.weight": torch.zeros(3)}
    folder = write_release(tmp_path / "rel", TINY, state)
    expect_error(folder, "unexpected keys 1 (class_embedding.weight)", shown=folder)


def test_wrong_shape_names_both_shapes(tmp_path):
    state = unet_state(tiny_module(TINY))
    state["conv_in.weight"] = torch.zeros(32, 4, 1, 1)
    folder = write_release(tmp_path / "rel", TINY, state)
    expect_error(folder, "conv_in.weight [32, 4, 1, 1] vs [32, 4, 3, 3]", shown=folder)


def test_config_of_another_module_does_not_fit(tmp_path):
    folder = write_release(tmp_path / "rel", TINY_SD2, unet_state(tiny_module(TINY)))
    expect_error(folder, "the weights do not fit the config", shown=folder)


def test_unsupported_dtype_names_the_tensor(tmp_path):
    state = unet_state(tiny_module(TINY))
    state["conv_out.bias"] = torch.zeros(4, dtype=torch.int32)
    folder = write_release(tmp_path / "rel", TINY, state)
    expect_error(folder, "conv_out.bias has dtype torch.int32", shown=folder)


class CreatesAFileWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    state = unet_state(tiny_module(TINY)) | {"payload": CreatesAFileWhenUnpickled(marker)}
    folder = write_release(tmp_path / "rel", TINY, {})
    weights = folder / "diffusion_pytorch_model.bin"
    torch.save(state, weights)
    expect_error(folder, "refused to unpickle", "exec", shown=weights)
    assert not marker.exists()
    # The payload is live: a full unpickle (what the reference does) creates the file.
    torch.serialization.load(str(weights), weights_only=False)
    assert marker.exists()


def test_a_pickle_of_something_other_than_a_state_dict(tmp_path):
    folder = write_release(tmp_path / "rel", TINY, {})
    torch.save([torch.zeros(1)], folder / "diffusion_pytorch_model.bin")
    expect_error(folder, "not a state dict", shown=folder / "diffusion_pytorch_model.bin")
