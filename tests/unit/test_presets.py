import json
import threading

import pytest

from sing_core.args import ArgsError, SingArgs
from sing_core.presets import PresetStore, apply_preset


@pytest.fixture
def store(tmp_path):
    return PresetStore(tmp_path / "data" / "singdiffusion-presets.json")


def test_missing_file_is_empty_and_put_creates_it(store):
    assert store.all() == {}
    preset = store.put("v1-5.safetensors [6ce0161689]", "6ce0161689", {"enabled": True, "module": "m"})
    assert preset.values == {"enabled": True, "module": "m", "guidance_scale": 0.0, "text_source": "auto",
                             "strength": 1.0, "module_prompt": ""}
    data = json.loads(store.path.read_text())
    assert data["version"] == 1
    assert data["presets"]["v1-5.safetensors [6ce0161689]"]["checkpoint_hash"] == "6ce0161689"


def test_a_file_saved_before_strength_existed_loads_with_strength_1(store):
    store.path.parent.mkdir(parents=True)
    old = {"checkpoint_hash": None, "enabled": True, "module": "m", "guidance_scale": 3.0, "text_source": "auto"}
    store.path.write_text(json.dumps({"version": 1, "presets": {"c": old}}))
    assert store.find("c").values == {"enabled": True, "module": "m", "guidance_scale": 3.0, "text_source": "auto",
                                      "strength": 1.0, "module_prompt": ""}


def test_find_by_title_then_by_hash(store):
    store.put("a.safetensors [1111111111]", "1111111111", {"enabled": True})
    assert store.find("a.safetensors [1111111111]").values["enabled"] is True
    renamed = store.find("renamed.safetensors [1111111111]", "1111111111")
    assert renamed is not None
    assert renamed.checkpoint == "a.safetensors [1111111111]"
    assert store.find("other", "2222222222") is None


def test_put_refuses_bad_values_and_unknown_keys(store):
    with pytest.raises(ArgsError, match="'guidance_scale' in the preset for 'c' must be a number"):
        store.put("c", None, {"guidance_scale": "high"})
    with pytest.raises(ArgsError, match=r"unknown SingDiffusion argument.*'follow_preset'"):
        store.put("c", None, {"follow_preset": True})
    assert not store.path.exists()


def test_delete(store):
    store.put("c", None, {"enabled": True})
    assert store.delete("c") is True
    assert store.delete("c") is False
    assert store.all() == {}


@pytest.mark.parametrize("content", ["{not json", '{"presets": []}', '{"presets": {"c": {"enabled": "yes"}}}'])
def test_corrupt_file_is_moved_aside_and_reported(store, content, capsys):
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    assert store.all() == {}
    aside = list(store.path.parent.glob("singdiffusion-presets.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_text() == content
    assert "moved to" in store.warnings[0]
    assert "moved to" in capsys.readouterr().out
    store.put("c", None, {"enabled": True})  # a fresh file, the corrupt one untouched
    assert aside[0].read_text() == content


def test_concurrent_writers_lose_nothing_and_readers_never_see_half_a_file(store):
    errors = []  # from every thread: an exception inside a thread does not fail the test by itself

    def writer(i):
        try:
            store.put(f"ckpt-{i}", None, {"enabled": i % 2 == 0, "guidance_scale": float(i)})
        except Exception as error:
            errors.append(error)

    def reader():
        reads = 0
        try:  # read as long as any writer runs (and at least 50 times), so the reads overlap the writes
            while reads < 50 or any(t.is_alive() for t in writers):
                if store.path.exists():
                    json.loads(store.path.read_text())  # raises on a partial file
                reads += 1
        except Exception as error:
            errors.append(error)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    threads = [*writers, threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(store.all()) == sorted(f"ckpt-{i}" for i in range(20))
    assert list(store.path.parent.glob(".*")) == []  # no temporary file left behind


def test_resolution_order():
    store_values = {"enabled": True, "module": "m", "guidance_scale": 3.0, "text_source": "module"}
    from sing_core.presets import Preset

    preset = Preset("c", None, store_values)
    followed, note = apply_preset(SingArgs(), preset, checkpoint_fits=True)
    assert followed == SingArgs(True, "m", 3.0, "module", True)
    assert note is None
    explicit = SingArgs(enabled=False, follow_preset=False)
    assert apply_preset(explicit, preset, checkpoint_fits=True) == (explicit, None)
    assert apply_preset(SingArgs(), None, checkpoint_fits=True) == (SingArgs(), None)


def test_a_preset_never_enables_an_unfit_checkpoint():
    from sing_core.presets import Preset

    args, note = apply_preset(
        SingArgs(),
        Preset("sdxl", None, {"enabled": True, "module": "m", "guidance_scale": 0.0, "text_source": "auto"}),
        False,
    )
    assert args.enabled is False
    assert "cannot use it" in note
