"""The /singdiffusion/v1 routes of a live webui: modules, refresh, convert, schema, presets."""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.parse

import pytest
from live_hosts import HOST
from tiny_sing_module import write_tiny_sing_module
from webui_client import WebuiApiError, WebuiClient

from sing_core.args import json_schema

pytestmark = pytest.mark.live

API = "/singdiffusion/v1"


def quoted(title: str) -> str:
    return urllib.parse.quote(title, safe="")


def modules_by_name(answer: dict) -> dict:
    return {row["name"]: row for row in answer["modules"]}


@pytest.fixture
def no_presets(webui):
    """Every test starts and ends without presets (they would change other tests' generations)."""

    def clear():
        for title in webui.get(f"{API}/presets")["presets"]:
            webui.request("DELETE", f"{API}/presets/{quoted(title)}")

    clear()
    yield
    clear()


def test_modules_lists_name_hash_widths_path_and_size(webui, sing_module):
    row = modules_by_name(webui.get(f"{API}/modules"))[sing_module.name]
    assert re.fullmatch(r"[0-9a-f]{10}", row["hash"])
    assert (row["latent_channels"], row["cross_attention_dim"]) == (4, HOST.text_width)
    assert (row["path"], row["folder"]) == ("tiny-sing", "models/SingDiffusion")
    weights = sing_module.folder / "diffusion_pytorch_model.bin"
    assert row["size_bytes"] == weights.stat().st_size + (sing_module.folder / "config.json").stat().st_size
    assert row["format"] == "release folder (.bin)"
    assert row["error"] is None
    assert "/" not in row["name"]


def test_refresh_finds_modules_copied_in_while_running(webui, data_dir, sing_module):
    shutil.copytree(sing_module.folder, data_dir / "models" / "SingDiffusion" / "sub" / "copied-in")
    assert "copied-in" not in modules_by_name(webui.get(f"{API}/modules"))  # the list is cached until a refresh
    rows = modules_by_name(webui.post(f"{API}/refresh"))
    assert rows["copied-in"]["path"] == "sub/copied-in"
    assert rows["copied-in"]["hash"] == rows[sing_module.name]["hash"]
    assert modules_by_name(webui.get(f"{API}/modules")).keys() == rows.keys()


def test_the_singdiffusion_dir_flag_adds_a_module_folder(own_webui, sing_module, live_dir):
    """A webui of its own (the session's runs without the flag): modules from --singdiffusion-dir are listed, found
    by refresh, and used."""
    extra = live_dir / "extra-modules"
    width = HOST.text_width
    write_tiny_sing_module(extra / "extra-one", seed=3, cross_attention_dim=width)
    write_tiny_sing_module(extra / sing_module.name, seed=4, cross_attention_dim=width)  # the models folder wins

    def put_the_module_in(data):
        shutil.copytree(sing_module.folder, data / "models" / "SingDiffusion" / sing_module.name)

    with own_webui("extra-dir", extra_args=("--singdiffusion-dir", str(extra)), prepare=put_the_module_in) as server:
        client = WebuiClient(server.url)
        rows = modules_by_name(client.get(f"{API}/modules"))
        assert (rows["extra-one"]["folder"], rows["extra-one"]["path"]) == ("--singdiffusion-dir", "extra-one")
        assert rows[sing_module.name]["folder"] == "models/SingDiffusion"
        write_tiny_sing_module(extra / "sub" / "extra-two", seed=5, cross_attention_dim=width)
        assert modules_by_name(client.post(f"{API}/refresh"))["extra-two"]["path"] == "sub/extra-two"
        used = client.txt2img(seed=9, alwayson_scripts={"SingDiffusion": {"args": [True, "extra-two"]}})
        assert "SingDiffusion: extra-two [" in used.info["infotexts"][0]
        assert "a module named 'tiny-sing' was found first" in server.log_text()


def test_convert_writes_safetensors_beside_the_kept_bin(webui, build_sing_module):
    module = build_sing_module("to-convert", seed=4)
    bin_path = module.folder / "diffusion_pytorch_model.bin"
    before = hashlib.sha256(bin_path.read_bytes()).hexdigest()
    old = modules_by_name(webui.post(f"{API}/refresh"))["to-convert"]
    assert old["convertible"] is True
    row = webui.post(f"{API}/modules/to-convert/convert")
    assert row["format"] == "release folder (.safetensors)"
    assert row["convertible"] is False
    assert (module.folder / "diffusion_pytorch_model.safetensors").is_file()
    assert hashlib.sha256(bin_path.read_bytes()).hexdigest() == before
    assert row["hash"] != old["hash"]  # the hash is the weights file's
    assert not list(module.folder.glob(".*"))  # no temporary file left
    with pytest.raises(WebuiApiError) as again:
        webui.post(f"{API}/modules/to-convert/convert")
    assert again.value.status == 422
    assert "nothing to convert" in again.value.body["detail"]
    on = webui.txt2img(seed=5, alwayson_scripts={"SingDiffusion": {"args": [True, "to-convert"]}})
    assert f"SingDiffusion: to-convert [{row['hash']}]" in on.info["infotexts"][0]


@pytest.mark.parametrize("name", ["no-such-module", "..%2F..%2Fetc", "%2Fetc%2Fpasswd"])
def test_convert_of_unknown_names_and_paths_is_404(webui, name):
    with pytest.raises(WebuiApiError) as missing:
        webui.post(f"{API}/modules/{name}/convert")
    assert missing.value.status == 404


def test_schema_is_the_argument_schema(webui):
    assert webui.get(f"{API}/schema") == json_schema()


def test_presets_put_get_delete_with_an_encoded_title(webui, host_checkpoint, no_presets):
    title = next(c["title"] for c in webui.checkpoints() if c["model_name"] == host_checkpoint.name)
    assert " [" in title  # spaces and brackets: the path must be URL-encoded
    saved = webui.request("PUT", f"{API}/presets/{quoted(title)}", {"enabled": True, "guidance_scale": 2.5,
                                                                    "strength": 0.5})
    assert saved == {"checkpoint": title, "checkpoint_hash": title[-11:-1], "enabled": True, "module": "",
                     "guidance_scale": 2.5, "text_source": "auto", "strength": 0.5, "module_prompt": ""}
    listing = webui.get(f"{API}/presets")
    assert listing["presets"][title]["guidance_scale"] == 2.5
    assert listing["checkpoint_in_use"] == title
    assert listing["file"].endswith("singdiffusion_presets.json")
    # any name the webui knows the checkpoint by finds the same preset
    assert webui.request("PUT", f"{API}/presets/{host_checkpoint.name}", {"enabled": False})["checkpoint"] == title
    assert webui.request("DELETE", f"{API}/presets/{quoted(title)}") == {"deleted": title}
    with pytest.raises(WebuiApiError) as gone:
        webui.request("DELETE", f"{API}/presets/{quoted(title)}")
    assert gone.value.status == 404
    assert "no SingDiffusion preset is saved" in gone.value.body["detail"]


@pytest.mark.parametrize(
    ("checkpoint", "body", "status", "message"),
    [
        ("no-such-checkpoint", {"enabled": True}, 404, "no checkpoint 'no-such-checkpoint'"),
        ("tiny-sd1", {"enabled": "yes"}, 422, "'enabled' in the preset for"),
        ("tiny-sd1", {"follow_preset": True}, 422, "unknown SingDiffusion argument(s) 'follow_preset'"),
        ("tiny-sd1", {"enabled": True, "module": "../../x"}, 422, "is a path"),
        ("tiny-sd1", {"enabled": True, "module": "missing"}, 422, "'missing' is not installed"),
        ("tiny-sd1", {"guidance_scale": 99}, 422, "must be between 0 and 30"),
    ],
)
def test_bad_presets_are_refused_with_a_reason(webui, host_checkpoint, no_presets, checkpoint, body, status, message):
    with pytest.raises(WebuiApiError) as refused:
        webui.request("PUT", f"{API}/presets/{checkpoint}", body)
    assert refused.value.status == status
    assert message in refused.value.body["detail"]
    assert webui.get(f"{API}/presets")["presets"] == {}


def test_a_preset_cannot_enable_the_module_on_a_checkpoint_it_cannot_serve(webui, eight_channel_checkpoint,
                                                                          no_presets):
    odd = eight_channel_checkpoint
    webui.refresh_checkpoints()
    with pytest.raises(WebuiApiError) as refused:  # not loaded: the family is read from the file's header
        webui.request("PUT", f"{API}/presets/{odd.name}", {"enabled": True})
    assert refused.value.status == 422
    assert "uses 8-channel latents and the module predicts 4-channel latents" in refused.value.body["detail"]
    assert "Save it with enabled false" in refused.value.body["detail"]
    saved = webui.request("PUT", f"{API}/presets/{odd.name}", {"enabled": False, "guidance_scale": 2.0})
    assert saved["checkpoint"].startswith("tiny-sd1-c8.safetensors [")


def test_a_corrupt_presets_file_is_moved_aside_and_reported(webui, data_dir, host_checkpoint, no_presets):
    presets_file = data_dir / "singdiffusion_presets.json"
    presets_file.write_text('{"version": 1, "presets": {"x": {"enabled": "yes"}}}')
    listing = webui.get(f"{API}/presets")
    assert listing["presets"] == {}
    assert any("could not be read" in warning and "moved to" in warning for warning in listing["warnings"])
    aside = list(data_dir.glob("singdiffusion_presets.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_text() == '{"version": 1, "presets": {"x": {"enabled": "yes"}}}'
    aside[0].unlink()
    off = webui.txt2img(seed=6)  # generations go on without presets
    assert "SingDiffusion" not in off.info["infotexts"][0]
