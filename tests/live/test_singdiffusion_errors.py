"""Modules that cannot serve the loaded checkpoint, or cannot be read: a clear HTTP error, and the webui serves on."""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest
from live_hosts import HOST
from test_singdiffusion import sing
from webui_client import WebuiApiError, WebuiClient

pytestmark = pytest.mark.live
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def refused(webui, *args, status=422):
    with pytest.raises(WebuiApiError) as raised:
        webui.txt2img(prompt="a cube", seed=51, **sing(*args))
    assert raised.value.status == status
    assert webui.txt2img(prompt="a cube", seed=51).image.shape == (64, 64, 3)  # and the server keeps serving
    return raised.value.body["detail"]


def test_a_module_for_other_latents_is_refused(webui, build_sing_module):
    module = build_sing_module("tiny-sing-8ch", latent_channels=8)  # copied in while the webui runs
    detail = refused(webui, True, module.name)
    assert "predicts 8-channel latents but the loaded checkpoint uses 4-channel latents" in detail
    assert "Choose a module made for this checkpoint or disable SingDiffusion" in detail


def test_a_module_of_another_text_width_is_refused_for_each_text_source(webui, build_sing_module):
    module = build_sing_module("tiny-sing-48", cross_attention_dim=48)
    assert "text source 'host' needs an SD-1.x checkpoint whose text conditioning is 48 wide" in refused(
        webui, True, module.name, 0.0, "host")
    detail = refused(webui, True, module.name, 0.0, "auto")  # auto falls back to the module's own CLIP-L
    assert "needs SD-1.5's CLIP-L text encoder (48 wide)" in detail
    assert "Settings > SingDiffusion" in detail


def test_a_broken_module_file_is_named_with_its_cause(webui, sing_module):
    broken = sing_module.folder.parent / "tiny-sing-broken"
    shutil.copytree(sing_module.folder, broken)
    weights = broken / "diffusion_pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[:2000])  # a download cut short
    detail = refused(webui, True, broken.name, status=500)
    assert str(weights) in detail


def test_a_checkpoint_with_other_latents_is_refused_before_sampling(webui, eight_channel_checkpoint, host_checkpoint,
                                                                   sing_module):
    wide = eight_channel_checkpoint
    webui.refresh_checkpoints()
    webui.use_checkpoint(wide.name)
    try:
        with pytest.raises(WebuiApiError) as raised:
            webui.txt2img(prompt="a cube", seed=52, **sing(True, sing_module.name))
        detail = raised.value.body["detail"]
        assert raised.value.status == 422
        assert "predicts 4-channel latents but the loaded checkpoint uses 8-channel latents" in detail
    finally:
        webui.use_checkpoint(host_checkpoint.name)


def test_an_sd_module_on_an_sdxl_checkpoint_is_refused_with_what_to_do(webui, build_host_checkpoint, host_checkpoint,
                                                                        sing_module, no_presets):
    """A reduced SDXL the host detects and loads as SDXL: an SD-1.x/2.x-latent module is refused with the reason
    and the fix, before any sampling; a preset cannot enable it there, loaded or not. (SDXL modules serve it:
    test_sdxl_oms.py.)"""
    sdxl = build_host_checkpoint("tiny-sdxl", family="sdxl")
    if HOST.key == "forge":
        assert sdxl.report["detected_as"] == "SDXL"
    webui.refresh_checkpoints()
    preset_url = f"/singdiffusion/v1/presets/{urllib.parse.quote(sdxl.name, safe='')}"
    with pytest.raises(WebuiApiError) as unloaded:  # read from the file's header
        webui.request("PUT", preset_url, {"enabled": True, "module": sing_module.name})
    assert "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL" in unloaded.value.body["detail"]
    webui.use_checkpoint(sdxl.name)
    try:
        # Live previews "Approx NN" (the default) would download the webui's SDXL approximation model before any
        # script runs: this machine is offline.
        with webui.temporary_options(show_progress_type="Approx cheap"), pytest.raises(WebuiApiError) as refused:
            webui.txt2img(prompt="a cube", seed=55, **sing(True, sing_module.name))
        assert refused.value.status == 422
        detail = refused.value.body["detail"]
        assert f"module {sing_module.name} [" in detail
        assert "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL (SDXL latents)" in detail
        assert "choose an SDXL module (e.g. One More Step's oms_b_openclip_xl), or an SD-1.x/2.x checkpoint" in detail
        assert webui.checkpoint_in_use() == sdxl.name
        with pytest.raises(WebuiApiError) as loaded:  # the loaded model's own family
            webui.request("PUT", preset_url, {"enabled": True, "module": sing_module.name})
        assert "the checkpoint is SDXL" in loaded.value.body["detail"]
    finally:
        webui.use_checkpoint(host_checkpoint.name)
    assert webui.txt2img(prompt="a cube", seed=55, **sing(True, sing_module.name)).image.shape == (64, 64, 3)


@pytest.mark.skipif(HOST is not None and HOST.key != "forge", reason="Forge's engines (Flux, Chroma) exist only there")
def test_every_forge_engine_is_named_and_served_by_the_modules_of_its_latent_family(webui):
    """Forge's Flux and Chroma have every A1111-style flag False: the family comes from the engine's class. Read by
    the extension's own Forge reader from instances of Forge's real engine classes (no weights loaded)."""
    families = webui.get("/singdiffusion-probe/families")
    assert {name: found["family"] for name, found in families.items()} == {
        "StableDiffusion": "SD-1.x", "StableDiffusion2": "SD-2.x", "StableDiffusionXLRefiner": "SDXL refiner",
        "StableDiffusionXL": "SDXL", "StableDiffusion3": "SD3", "Chroma": "Chroma", "Flux": "Flux"}
    for name, found in families.items():
        sd_module, sdxl_module = found["refusal"], found["refusal_sdxl_module"]
        if found["family"] in ("SD-1.x", "SD-2.x"):
            assert sd_module is None
            assert "the module predicts SDXL latents" in sdxl_module, name
        elif found["family"] == "SDXL":
            assert sdxl_module is None
            assert "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL" in sd_module
        else:
            for refusal in (sd_module, sdxl_module):
                assert f"the checkpoint is {found['family']}, which no start module serves" in refusal, name


def test_the_module_is_cached_and_reloaded_when_its_file_or_precision_changes(webui, webui_log, build_sing_module):
    from tiny_sing_module import write_tiny_sing_module

    # x̂0 enters the k-diffusion start as x̂0 + σ0·x1 with σ0 = 14.6: a latent mean of ±10 (at CFG 1, where the
    # normalized guidance does not divide it by w) is what moves the tiny checkpoint's image by tens of grey levels.
    module = build_sing_module("tiny-sing-reload", mean_offset=10.0)
    args = {"cfg_scale": 1.0, **sing(True, module.name, 0.0, "host")}
    first = webui.txt2img(prompt="a cube", seed=53, **args)
    webui.txt2img(prompt="a cube", seed=53, **args)
    assert webui_log.text().count(f"SingDiffusion: loaded {module.name} ") == 1  # loaded once, then cached

    # replaced on disk while the webui runs
    write_tiny_sing_module(module.folder, mean_offset=-10.0, cross_attention_dim=HOST.text_width)
    darker = webui.txt2img(prompt="a cube", seed=53, **args)
    assert webui_log.text().count(f"SingDiffusion: loaded {module.name} ") == 2
    assert darker.image.mean() < first.image.mean() - 10  # the new file's x̂0 (mean −10 instead of +10) is used

    with webui.temporary_options(singdiffusion_precision="bf16"):
        webui.txt2img(prompt="a cube", seed=53, **args)
    assert "torch.bfloat16" in webui_log.text().split(f"SingDiffusion: loaded {module.name} ")[-1].splitlines()[0]


def test_install_script_installs_nothing_into_a_webui_that_has_what_it_needs(webui_install):
    import subprocess

    code = (
        "import sys, runpy; sys.argv = ['launch.py', '--skip-prepare-environment'];"
        "import launch;"
        "calls = [];"
        "launch.run_pip = lambda *a, **k: calls.append(a);"
        f"runpy.run_path({str(PROJECT_ROOT / 'install.py')!r});"
        "print('pip calls:', calls)"
    )
    done = subprocess.run([str(webui_install.python), "-c", code], cwd=webui_install.root, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pip calls: []" in done.stdout


def test_a_webui_without_modules_serves_as_before_and_says_where_modules_go(own_webui):
    with own_webui("no-modules") as server:
        client = WebuiClient(server.url)
        assert client.txt2img(prompt="a cube", seed=54).image.shape == (64, 64, 3)  # no args: as without it
        assert client.txt2img(prompt="a cube", seed=54, **sing(False)).image.shape == (64, 64, 3)
        with pytest.raises(WebuiApiError) as raised:
            client.txt2img(prompt="a cube", seed=54, **sing(True))
        assert raised.value.status == 422
        assert "no module is installed. Put a module in" in raised.value.body["detail"]
        assert str(server.data_dir / "models" / "SingDiffusion") in raised.value.body["detail"]
        log = server.log_text()
        assert "sing_webui" not in log  # no traceback through our code (the webui's own git warning aside)
        assert "Error running" not in log
