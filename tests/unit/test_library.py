import pytest

from sing_core.library import ModuleLibrary, UnknownModuleError


def make_release(folder, weights="diffusion_pytorch_model.bin"):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / weights).write_bytes(b"w")
    return folder


@pytest.fixture
def roots(tmp_path):
    main, extra = tmp_path / "SingDiffusion", tmp_path / "extra"
    make_release(main / "release")
    make_release(main / "sub" / "nested", "diffusion_pytorch_model.safetensors")
    (main / "single.safetensors").write_bytes(b"s")
    (main / "notes.txt").write_text("not a module")
    (main / "incomplete").mkdir()
    (main / "incomplete" / "config.json").write_text("{}")
    (main / ".hidden").mkdir()
    (main / ".hidden" / "x.safetensors").write_bytes(b"h")
    extra.mkdir()
    (extra / "single.safetensors").write_bytes(b"other")
    (extra / "more.safetensors").write_bytes(b"m")
    return main, extra


def test_scan_finds_release_folders_and_files(roots):
    lib = ModuleLibrary(roots).refresh()
    assert lib.names() == ["more", "nested", "release", "single"]
    assert lib.entries["release"].is_release_folder
    assert lib.entries["release"].weights.name == "diffusion_pytorch_model.bin"
    assert lib.entries["nested"].relative_path == "sub/nested"
    assert lib.entries["single"].root == roots[0]  # the first folder wins a clash
    assert [e.path for e in lib.shadowed] == [roots[1] / "single.safetensors"]


def test_resolve_refuses_paths_and_lists_installed(roots):
    lib = ModuleLibrary(roots).refresh()
    for name in ("../etc/passwd", "/abs/module", "sub/nested", "..", "a\\b"):
        with pytest.raises(UnknownModuleError, match="is a path"):
            lib.resolve(name)
    with pytest.raises(UnknownModuleError, match=r"'missing' is not installed \(installed: more, nested"):
        lib.resolve("missing")


def test_resolve_by_hash_finds_a_renamed_module(roots):
    lib = ModuleLibrary(roots).refresh()
    hashes = {"release": "aaaaaaaaaa", "single": "bbbbbbbbbb"}
    found = lib.resolve("old-name", "bbbbbbbbbb", hash_of=lambda e: hashes.get(e.name))
    assert found.name == "single"


def test_missing_roots_give_an_empty_library(tmp_path):
    lib = ModuleLibrary([tmp_path / "nope"]).refresh()
    assert lib.names() == []
    with pytest.raises(UnknownModuleError, match="installed: none"):
        lib.resolve("x")


def test_stat_key_changes_when_weights_change(roots):
    lib = ModuleLibrary(roots).refresh()
    entry = lib.entries["single"]
    before = entry.stat_key()
    entry.weights.write_bytes(b"a longer file")
    assert entry.stat_key() != before


def test_a_module_removed_since_the_scan_is_named_as_gone(roots):
    import shutil

    from sing_core.library import ModuleGoneError

    lib = ModuleLibrary(roots).refresh()
    shutil.rmtree(roots[0] / "release")
    (roots[0] / "single.safetensors").unlink()
    for name, path in (("release", roots[0] / "release"), ("single", roots[0] / "single.safetensors")):
        with pytest.raises(ModuleGoneError, match=rf"module '{name}' is gone: {path} was removed.*refresh the list"):
            lib.resolve(name)
    assert lib.resolve("more").name == "more"  # the others are untouched
    assert "release" not in lib.refresh().names()


def test_one_more_step_release_folders_are_listed_by_their_folder_name(tmp_path):
    """As downloaded from Hugging Face: model_index.json + oms_module/ (fp16 weights) + oms_text_encoder/ (config
    only); one entry named after the folder, none for its subfolders or their files."""
    root = tmp_path / "models"
    oms = root / "oms_b_openclip_xl"
    (oms / "oms_module").mkdir(parents=True)
    (oms / "oms_text_encoder").mkdir()
    (oms / "model_index.json").write_text("{}")
    (oms / "oms_module" / "config.json").write_text("{}")
    (oms / "oms_module" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"w")
    (oms / "oms_text_encoder" / "config.json").write_text("{}")
    (root / "half" / "oms_module").mkdir(parents=True)  # an interrupted download: no weights, not listed
    (root / "half" / "model_index.json").write_text("{}")
    library = ModuleLibrary([root]).refresh()
    assert library.names() == ["oms_b_openclip_xl"]
    entry = library.resolve("oms_b_openclip_xl")
    assert entry.path == oms
    assert entry.weights == oms / "oms_module" / "diffusion_pytorch_model.fp16.safetensors"
