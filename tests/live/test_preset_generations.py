"""Per-checkpoint presets in generations: API calls without SingDiffusion args follow them, explicit args win, no
preset changes nothing, and a preset follows its checkpoint across switches (never enabling an unfit one)."""

from __future__ import annotations

import json
import urllib.parse

import numpy as np
import pytest
from live_hosts import HOST
from webui_client import WebuiApiError

pytestmark = pytest.mark.live

API = "/singdiffusion/v1"
BASE = {"prompt": "a red cube", "seed": 31}


def sing(*args, **named) -> dict:
    return {"alwayson_scripts": {"SingDiffusion": {"args": [named] if named else list(args)}}}


def put(webui, checkpoint: str, **values) -> dict:
    return webui.request("PUT", f"{API}/presets/{urllib.parse.quote(checkpoint, safe='')}", values)


def infotext(generation) -> str:
    return generation.info["infotexts"][0]


def test_without_a_preset_a_request_without_args_is_bit_identical_to_off(webui, host_checkpoint, other_checkpoint,
                                                                         no_presets):
    off = webui.txt2img(**BASE, **sing(False))
    assert np.array_equal(webui.txt2img(**BASE).image, off.image)
    other = other_checkpoint
    webui.refresh_checkpoints()
    put(webui, other.name, enabled=True, module="tiny-sing", guidance_scale=3.0)  # another checkpoint's preset
    absent = webui.txt2img(**BASE)
    assert np.array_equal(absent.image, off.image)
    assert "SingDiffusion" not in infotext(absent)


def test_requests_without_args_follow_the_preset_and_explicit_args_win(webui, host_checkpoint, sing_module, no_presets):
    off = webui.txt2img(**BASE, **sing(False))
    explicit_on = webui.txt2img(**BASE, **sing(enabled=True, module=sing_module.name, guidance_scale=3.0))
    put(webui, host_checkpoint.name, enabled=True, module=sing_module.name, guidance_scale=3.0)

    followed = webui.txt2img(**BASE)
    assert np.array_equal(followed.image, explicit_on.image)
    assert f"SingDiffusion: {sing_module.name} [" in infotext(followed)
    assert "SingDiffusion guidance: 3," in infotext(followed)  # the infotext records the values used

    assert np.array_equal(webui.txt2img(**BASE, **sing(False)).image, off.image)  # explicit off wins
    assert "SingDiffusion guidance: 5," in infotext(webui.txt2img(**BASE, **sing(True, sing_module.name, 5.0)))
    assert "SingDiffusion guidance: 5," in infotext(webui.txt2img(**BASE, **sing(enabled=True, guidance_scale=5.0)))
    # asking to follow, explicitly, gives the preset whatever else was sent
    asked = webui.txt2img(**BASE, **sing(enabled=False, follow_preset=True))
    assert np.array_equal(asked.image, explicit_on.image)
    assert np.array_equal(webui.txt2img(**BASE, **sing(False, "", 0.0, "auto", True)).image, explicit_on.image)


def test_a_disabled_preset_turns_it_off_for_requests_without_args(webui, host_checkpoint, sing_module, no_presets):
    off = webui.txt2img(**BASE, **sing(False))
    put(webui, host_checkpoint.name, enabled=False, module=sing_module.name, guidance_scale=3.0)
    assert np.array_equal(webui.txt2img(**BASE).image, off.image)
    assert "SingDiffusion guidance: 3," in infotext(webui.txt2img(**BASE, **sing(True, sing_module.name, 3.0)))


def test_presets_follow_the_checkpoint_across_switches(webui, host_checkpoint, other_checkpoint, sing_module,
                                                       no_presets):
    other = other_checkpoint
    webui.refresh_checkpoints()
    put(webui, host_checkpoint.name, enabled=True, module=sing_module.name, guidance_scale=3.0)
    put(webui, other.name, enabled=False, guidance_scale=1.0)
    assert "SingDiffusion guidance: 3," in infotext(webui.txt2img(**BASE))
    webui.use_checkpoint(other.name)
    on_other = webui.txt2img(**BASE)
    assert "SingDiffusion" not in infotext(on_other)
    assert np.array_equal(on_other.image, webui.txt2img(**BASE, **sing(False)).image)
    webui.use_checkpoint(host_checkpoint.name)
    assert "SingDiffusion guidance: 3," in infotext(webui.txt2img(**BASE))


def test_a_preset_never_enables_the_module_on_a_checkpoint_it_cannot_serve(webui, host_checkpoint, data_dir,
                                                                          eight_channel_checkpoint, sing_module,
                                                                          webui_log, no_presets):
    odd = eight_channel_checkpoint
    webui.refresh_checkpoints()
    with pytest.raises(WebuiApiError) as refused:
        put(webui, odd.name, enabled=True, module=sing_module.name)
    assert refused.value.status == 422
    webui.use_checkpoint(odd.name)
    with pytest.raises(WebuiApiError) as loaded_refusal:  # loaded: the live model's family decides
        put(webui, odd.name, enabled=True, module=sing_module.name)
    assert "uses 8-channel latents" in loaded_refusal.value.body["detail"]
    title = put(webui, odd.name, enabled=False)["checkpoint"]

    # A file edited by hand (or a checkpoint replaced after saving) can still hold one: it is ignored, with a note.
    presets_file = data_dir / "singdiffusion_presets.json"
    stored = json.loads(presets_file.read_text())
    stored["presets"][title]["enabled"] = True
    presets_file.write_text(json.dumps(stored))
    with pytest.raises(WebuiApiError) as failure:
        webui.txt2img(**BASE)
    # The webui's own failure on this checkpoint (every SD-1 noise has 4 channels), not SingDiffusion's refusal:
    # the module was not enabled.
    assert failure.value.status == 500
    assert HOST.eight_channel_error in str(failure.value.body), failure.value.body
    log = webui_log.wait_for("cannot use it: ignored")
    assert f"the preset for {title} enables SingDiffusion" in log
    assert "uses 8-channel latents" in log
    with pytest.raises(WebuiApiError) as explicit:  # enabled explicitly, the module's own check refuses it
        webui.txt2img(**BASE, **sing(True, sing_module.name))
    assert explicit.value.status == 422
    assert "predicts 4-channel latents" in explicit.value.body["detail"]
