"""Settings > SingDiffusion through /sdapi/v1/options: declared with their defaults, and used by generations."""

from __future__ import annotations

import pytest
from live_hosts import HOST
from webui_client import WebuiApiError

pytestmark = pytest.mark.live

DEFAULTS = {
    "singdiffusion_default_module": "",
    "singdiffusion_clip_l": "Automatic",
    "singdiffusion_openclip_h": "Automatic",
    "singdiffusion_device": "webui",
    "singdiffusion_precision": "auto",
    "singdiffusion_memory": "keep on device",
    "singdiffusion_timings": False,
}


def on(**named) -> dict:
    return {"alwayson_scripts": {"SingDiffusion": {"args": [{"enabled": True, **named}]}}}


def test_every_option_is_declared_with_its_default(webui):
    assert webui.get("/singdiffusion/v1/settings") == DEFAULTS
    listed = webui.get("/sdapi/v1/options")
    if HOST.options_lists_extensions:
        assert {key: listed.get(key, "missing") for key in DEFAULTS} == DEFAULTS
    else:  # Forge: its response model was built before any extension added a setting
        assert not set(DEFAULTS) & set(listed)


def test_settings_set_through_the_api_are_read_back_and_used(webui, sing_module, webui_log):
    webui.set_options(singdiffusion_timings=True, singdiffusion_memory="move to CPU after use")
    try:
        assert webui.get("/singdiffusion/v1/settings")["singdiffusion_memory"] == "move to CPU after use"
        webui.txt2img(seed=10, **on(module=sing_module.name))
        assert f"SingDiffusion: {sing_module.name} [" in webui_log.wait_for(" ms")
    finally:
        webui.set_options(singdiffusion_timings=False, singdiffusion_memory="keep on device")
    assert webui.get("/singdiffusion/v1/settings") == DEFAULTS


def test_the_default_module_is_used_when_a_generation_names_none(webui, sing_module, build_sing_module):
    second = build_sing_module("second-sing", seed=6, mean_offset=-1.0)  # copied in while the webui runs
    with webui.temporary_options(singdiffusion_default_module=second.name):
        assert webui.options()["singdiffusion_default_module"] == second.name
        used = webui.txt2img(seed=7, **on())
    assert f"SingDiffusion: {second.name} [" in used.info["infotexts"][0]
    assert f"SingDiffusion: {sing_module.name} [" in webui.txt2img(seed=7, **on(module=sing_module.name)).info[
        "infotexts"][0]


def test_the_clip_l_file_chosen_in_settings_is_the_one_loaded(webui, host_checkpoint, build_sing_module):
    """A module 48 wide: the checkpoint's own text encoder cannot stand in for its CLIP-L (Automatic refuses,
    naming the setting), and the file chosen in Settings is the one loaded: the tiny SD-1 checkpoint, which holds a
    CLIP-L by its keys but not one for this module (A1111's 32-wide one has no head count to infer, Forge's is 768
    wide), so the request fails naming that file instead of generating without the module."""
    module = build_sing_module("tiny-sing-48-text", cross_attention_dim=48)
    args = on(module=module.name, text_source="module")
    clip_file = f"Stable-diffusion/{host_checkpoint.name}.safetensors"
    with pytest.raises(WebuiApiError) as automatic:
        webui.txt2img(seed=8, **args)
    assert automatic.value.status == 422
    assert "needs SD-1.5's CLIP-L text encoder (48 wide)" in automatic.value.body["detail"]
    assert "Settings > SingDiffusion > CLIP-L text encoder file" in automatic.value.body["detail"]
    with webui.temporary_options(singdiffusion_clip_l=clip_file), pytest.raises(WebuiApiError) as chosen:
        webui.txt2img(seed=8, **args)
    assert chosen.value.status == 500
    assert f"{host_checkpoint.name}.safetensors: " in chosen.value.body["detail"]
    with webui.temporary_options(singdiffusion_clip_l="../outside.safetensors"), \
            pytest.raises(WebuiApiError) as outside:
        webui.txt2img(seed=8, **args)
    assert "is not a file under" in outside.value.body["detail"]
    assert webui.get("/singdiffusion/v1/settings")["singdiffusion_clip_l"] == "Automatic"


@pytest.mark.skipif(HOST is not None and HOST.text_width != 768,
                    reason="needs a checkpoint with a full-size CLIP-L (the A1111 tier's tiny one is 32 wide)")
def test_a_clip_l_file_gives_the_start_the_checkpoints_own_clip_l_gives(webui, host_checkpoint, text_sing_module):
    """Text source module: SD-1.5's CLIP-L read from a file (here the checkpoint itself, chosen in Settings)
    and the loaded checkpoint's own (Automatic) encode the same prompt alike."""
    import probe
    import torch

    args = on(module=text_sing_module.name, text_source="module")
    probe.reset(webui)
    webui.txt2img(seed=8, prompt="a red cube", **args)
    with webui.temporary_options(singdiffusion_clip_l=f"Stable-diffusion/{host_checkpoint.name}.safetensors"):
        webui.txt2img(seed=8, prompt="a red cube", **args)
    automatic, from_file = probe.captures(webui)
    torch.testing.assert_close(from_file.x, automatic.x, rtol=1e-3, atol=1e-3)


def test_timings_are_printed_when_asked(webui, sing_module, webui_log):
    with webui.temporary_options(singdiffusion_timings=True):
        webui.txt2img(seed=9, **on(module=sing_module.name))
    assert f"SingDiffusion: {sing_module.name} [" in webui_log.wait_for(" ms")


@pytest.mark.skipif(HOST is not None and HOST.key != "forge",
                    reason="only Forge has a memory manager for an extension's models to join")
def test_in_forge_the_module_is_a_citizen_of_the_memory_manager(webui, build_sing_module, webui_log):
    """Placed by load_models_gpu as a ModelPatcher (on the CPU here, --always-cpu, in fp32), so Forge counts it and
    may evict it; 'move to CPU after use' takes it off Forge's list after each use, 'unload after use' frees it."""
    module = build_sing_module("tiny-sing-memory", seed=7)
    args = on(module=module.name)

    def held() -> list[dict]:
        return [m for m in webui.get("/singdiffusion-probe/loaded-models") if m["class"] == "SingModule"]

    with webui.temporary_options(singdiffusion_memory="keep on device"):
        webui.txt2img(seed=11, **args)
        assert held() == [{"class": "SingModule", "device": "cpu", "load_device": "cpu"}]
        assert f"SingDiffusion: loaded {module.name} [" in webui_log.text()
        assert "(torch.float32, runs on cpu)" in webui_log.text().split(f"loaded {module.name} ")[-1].splitlines()[0]
    with webui.temporary_options(singdiffusion_memory="move to CPU after use"):
        webui.txt2img(seed=11, **args)
        assert held() == []
    with webui.temporary_options(singdiffusion_memory="unload after use"):
        webui.txt2img(seed=11, **args)  # the cached module, freed afterwards
        before = webui_log.text().count(f"SingDiffusion: loaded {module.name} ")
        webui.txt2img(seed=11, **args)
        assert held() == []
        assert webui_log.text().count(f"SingDiffusion: loaded {module.name} ") == before + 1  # loaded again
