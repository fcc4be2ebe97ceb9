"""Settings > SingDiffusion through /sdapi/v1/options: declared with their defaults, and used by generations."""

from __future__ import annotations

import pytest
from webui_client import WebuiApiError

pytestmark = pytest.mark.live

DEFAULTS = {
    "singdiffusion_default_module": "",
    "singdiffusion_clip_l": "Automatic",
    "singdiffusion_device": "webui",
    "singdiffusion_precision": "auto",
    "singdiffusion_memory": "keep on device",
    "singdiffusion_timings": False,
}


def on(**named) -> dict:
    return {"alwayson_scripts": {"SingDiffusion": {"args": [{"enabled": True, **named}]}}}


def test_every_option_is_declared_with_its_default(webui):
    options = webui.options()
    assert {key: options.get(key, "missing") for key in DEFAULTS} == DEFAULTS


def test_the_default_module_is_used_when_a_generation_names_none(webui, sing_module, build_sing_module):
    second = build_sing_module("second-sing", seed=6, mean_offset=-1.0)  # copied in while the webui runs
    with webui.temporary_options(singdiffusion_default_module=second.name):
        assert webui.options()["singdiffusion_default_module"] == second.name
        used = webui.txt2img(seed=7, **on())
    assert f"SingDiffusion: {second.name} [" in used.info["infotexts"][0]
    assert f"SingDiffusion: {sing_module.name} [" in webui.txt2img(seed=7, **on(module=sing_module.name)).info[
        "infotexts"][0]


def test_the_clip_l_file_chosen_in_settings_is_the_one_loaded(webui, host_checkpoint, build_host_checkpoint,
                                                             sing_module):
    """On a checkpoint whose text encoder (48 wide) cannot stand in for the module's (32 wide), the module text
    source needs the CLIP-L file from Settings. The tiny SD-1 checkpoint is such a file by its keys, but its
    32-wide encoder has no head count to infer: the request fails, naming that file, instead of generating
    without the module."""
    other = build_host_checkpoint("tiny-sd1-t48", seed=2, text_width=48)
    webui.refresh_checkpoints()
    args = on(module=sing_module.name, text_source="module")
    clip_file = f"Stable-diffusion/{host_checkpoint.name}.safetensors"
    try:
        webui.use_checkpoint(other.name)
        with pytest.raises(WebuiApiError) as automatic:
            webui.txt2img(seed=8, **args)
        assert automatic.value.status == 422
        assert "Settings > SingDiffusion > CLIP-L text encoder file" in automatic.value.body["detail"]
        with webui.temporary_options(singdiffusion_clip_l=clip_file), pytest.raises(WebuiApiError) as chosen:
            webui.txt2img(seed=8, **args)
        assert chosen.value.status == 500
        assert f"{host_checkpoint.name}.safetensors: hidden size 32" in chosen.value.body["detail"]
        with webui.temporary_options(singdiffusion_clip_l="../outside.safetensors"), \
                pytest.raises(WebuiApiError) as outside:
            webui.txt2img(seed=8, **args)
        assert "is not a file under" in outside.value.body["detail"]
    finally:
        webui.use_checkpoint(host_checkpoint.name)


def test_timings_are_printed_when_asked(webui, sing_module, webui_log):
    with webui.temporary_options(singdiffusion_timings=True):
        webui.txt2img(seed=9, **on(module=sing_module.name))
    assert f"SingDiffusion: {sing_module.name} [" in webui_log.wait_for(" ms")
