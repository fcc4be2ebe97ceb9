"""SDXL checkpoints and One More Step modules in a real webui (AUTOMATIC1111 or Forge), through the HTTP API.

A random reduced SDXL checkpoint the host detects as SDXL, random modules in One More Step's release layout for
SDXL latents (tiny_oms_module.py: one reading SD-2's OpenCLIP ViT-H, whose text comes from a random reduced SD-2
checkpoint among the user's checkpoints, tiny_sd2_text.py; one reading SDXL's own conditioning, as oms_l_mixclip_xl
does), and the sampler's real first input (the probe) against the reference computed here: x̂0 = −v from the
module's own network on the reference's embeddings, plain CFG against "", and the DDIM step with the host's noise.
"""

from __future__ import annotations

import numpy as np
import probe
import pytest
import torch
from live_hosts import HOST
from start_math import oms_x0, step_to_first_point
from tiny_oms_module import write_tiny_oms_module
from tiny_sd2_text import write_tiny_sd2_text
from webui_client import WebuiApiError

pytestmark = pytest.mark.live

TITLE = "SingDiffusion"
SD2_TEXT_WIDTH = 64
OMS_XL, OMS_MIX, OMS_SD = "tiny-oms-xl", "tiny-oms-mixclip-xl", "tiny-oms-sd"
SDXL_SAMPLERS = [("Euler a", "Automatic"), ("DPM++ 2M", "Karras"), ("DDIM", "Automatic")]


def sing(**named) -> dict:
    return {"alwayson_scripts": {TITLE: {"args": [{"enabled": True, **named}]}}}


def sdxl_crossattn_width(sdxl) -> int:
    """The SDXL checkpoint's conditioning width: A1111's reduced one has one CLIP of the builder's width; Forge's
    is full size (CLIP-L 768 ⊕ CLIP-G 1280)."""
    return 2048 if HOST.key == "forge" else int(sdxl.report["text_width"])


@pytest.fixture(scope="module")
def sdxl(build_host_checkpoint, webui):
    built = build_host_checkpoint("tiny-sdxl", family="sdxl")
    webui.refresh_checkpoints()
    return built


@pytest.fixture(scope="module")
def sd2_text(data_dir, webui):
    """A reduced SD-2.x checkpoint among the webui's checkpoints: the ViT-H the 'Automatic' choice finds."""
    path = data_dir / "models" / "Stable-diffusion" / "tiny-sd2-text.safetensors"
    if not path.exists():
        write_tiny_sd2_text(path, width=SD2_TEXT_WIDTH)
        webui.refresh_checkpoints()
    return path


@pytest.fixture(scope="module")
def oms_modules(data_dir, sdxl, sd2_text, webui):
    folder = data_dir / "models" / "SingDiffusion"
    modules = {
        OMS_XL: write_tiny_oms_module(folder / OMS_XL, text="openclip_h", cross_attention_dim=SD2_TEXT_WIDTH),
        OMS_MIX: write_tiny_oms_module(folder / OMS_MIX, text="sdxl", cross_attention_dim=sdxl_crossattn_width(sdxl),
                                       seed=1),
        OMS_SD: write_tiny_oms_module(folder / OMS_SD, family="sd", text="openclip_h",
                                      cross_attention_dim=SD2_TEXT_WIDTH, seed=2),
    }
    webui.post("/singdiffusion/v1/refresh")
    return {name: folder / name for name in modules}


@pytest.fixture
def on_sdxl(webui, sdxl, host_checkpoint, oms_modules):
    """The SDXL checkpoint loaded for the test (live previews 'Approx cheap': Forge's default downloads a model for
    SDXL); the session's SD-1 checkpoint back afterwards."""
    webui.use_checkpoint(sdxl.name)
    try:
        assert webui.checkpoint_in_use() == sdxl.name, "the webui did not load the SDXL checkpoint: see its log"
        with webui.temporary_options(show_progress_type="Approx cheap"):
            yield oms_modules
    finally:
        webui.use_checkpoint(host_checkpoint.name)


@pytest.fixture(scope="module")
def vit_h(sd2_text):
    """The reference's ViT-H embeddings: sing_core's OpenCLIP ViT-H read from the same SD-2.x file."""
    try:
        from sing_core.text import open_text_encoder
    except ImportError:
        pytest.skip("sing_core.text.open_text_encoder (the OpenCLIP ViT-H encoder) is not on this branch yet")
    encoder = open_text_encoder("openclip_h", sd2_text)
    return lambda prompts: encoder.encode(list(prompts)).float()


@pytest.mark.parametrize(("sampler", "scheduler"), SDXL_SAMPLERS)
def test_an_oms_module_reading_vit_h_starts_the_sdxl_sampler_at_the_reference(webui, on_sdxl, vit_h, sampler,
                                                                               scheduler):
    probe.reset(webui)
    settings = {"prompt": "a red cube", "negative_prompt": "blurry", "seed": 61, "cfg_scale": 5.0, "batch_size": 2,
                "sampler_name": sampler, "scheduler": scheduler}
    on = webui.txt2img(**settings, **sing(module=OMS_XL, guidance_scale=1.5))
    (capture,) = probe.captures(webui)
    x0_hat = oms_x0(on_sdxl[OMS_XL], capture.noise, vit_h(["a red cube"]), vit_h([""]), 1.5)
    torch.testing.assert_close(capture.x, step_to_first_point(capture, x0_hat), rtol=1e-4, atol=1e-3)
    infotext = on.info["infotexts"][0]
    assert f"SingDiffusion: {OMS_XL} [" in infotext
    assert "SingDiffusion guidance: 1.5," in infotext
    assert "SingDiffusion text: module (tiny-sd2-text.safetensors)" in infotext
    off = webui.txt2img(**settings)
    assert not any(np.array_equal(a, b) for a, b in zip(on.images, off.images, strict=True))


def test_oms_guidance_defaults_to_1_and_never_follows_the_cfg_scale(webui, on_sdxl, vit_h):
    probe.reset(webui)
    result = webui.txt2img(prompt="a red cube", seed=62, cfg_scale=7.0, **sing(module=OMS_XL))
    (capture,) = probe.captures(webui)
    x0_hat = oms_x0(on_sdxl[OMS_XL], capture.noise, vit_h(["a red cube"]), None, 1.0)
    torch.testing.assert_close(capture.x, step_to_first_point(capture, x0_hat), rtol=1e-4, atol=1e-3)
    assert "SingDiffusion guidance: 1," in result.info["infotexts"][0]


@pytest.mark.parametrize(("sampler", "scheduler"), SDXL_SAMPLERS)
def test_an_sdxl_text_module_reads_the_checkpoints_own_conditioning(webui, on_sdxl, sampler, scheduler):
    """oms_l_mixclip_xl's kind: the SDXL checkpoint's crossattn rows (the host text source), "" by the same
    encoder, never the negative prompt."""
    probe.reset(webui)
    webui.txt2img(prompt="a red cube", negative_prompt="blurry", seed=63, cfg_scale=5.0, batch_size=2,
                  sampler_name=sampler, scheduler=scheduler, **sing(module=OMS_MIX, guidance_scale=2.0))
    (capture,) = probe.captures(webui)
    x0_hat = oms_x0(on_sdxl[OMS_MIX], capture.noise, capture.text_cond, probe.host_rows(webui, [""]), 2.0)
    torch.testing.assert_close(capture.x, step_to_first_point(capture, x0_hat), rtol=1e-4, atol=1e-3)


def test_a_batch_of_three_prompts_gives_each_image_its_own(webui, on_sdxl, vit_h):
    """The Prompt matrix's four prompts in batches of 3: the first batch holds three different prompts."""
    probe.reset(webui)
    webui.txt2img(prompt="a cube|red|blue", seed=64, batch_size=3, script_name="prompt matrix",
                  script_args=[False, False, "positive", "comma", 0], **sing(module=OMS_XL, guidance_scale=1.5))
    capture = next(c for c in probe.captures(webui) if c.iteration == 0 and not c.is_hr_pass)
    assert len(set(capture.prompts)) == 3
    x0_hat = oms_x0(on_sdxl[OMS_XL], capture.noise, vit_h(capture.prompts), vit_h([""]), 1.5)
    torch.testing.assert_close(capture.x, step_to_first_point(capture, x0_hat), rtol=1e-4, atol=1e-3)


def test_a_batch_of_three_prompts_with_the_checkpoints_own_text(webui, on_sdxl):
    probe.reset(webui)
    webui.txt2img(prompt="a cube|red|blue", seed=64, batch_size=3, script_name="prompt matrix",
                  script_args=[False, False, "positive", "comma", 0], **sing(module=OMS_MIX, guidance_scale=1.5))
    capture = next(c for c in probe.captures(webui) if c.iteration == 0 and not c.is_hr_pass)
    assert len(set(capture.prompts)) == 3
    assert not torch.allclose(capture.text_cond[0], capture.text_cond[1])
    x0_hat = oms_x0(on_sdxl[OMS_MIX], capture.noise, capture.text_cond, probe.host_rows(webui, [""]), 1.5)
    torch.testing.assert_close(capture.x, step_to_first_point(capture, x0_hat), rtol=1e-4, atol=1e-3)


def test_the_module_prompt_changes_only_the_modules_side(webui, on_sdxl):
    settings = {"prompt": "a car", "seed": 65, "cfg_scale": 5.0}
    probe.reset(webui)
    plain = webui.txt2img(**settings, **sing(module=OMS_MIX))
    prompted = webui.txt2img(**settings, **sing(module=OMS_MIX, module_prompt="red car, at night"))
    first, second = probe.captures(webui)
    torch.testing.assert_close(second.text_cond, first.text_cond)  # the sampler's own conditioning is the prompt's
    x0_hat = oms_x0(on_sdxl[OMS_MIX], second.noise, probe.host_rows(webui, ["red car, at night"]), None, 1.0)
    torch.testing.assert_close(second.x, step_to_first_point(second, x0_hat), rtol=1e-4, atol=1e-3)
    assert not torch.allclose(second.x, first.x, atol=1e-3)
    assert "SingDiffusion module prompt: \"red car, at night\"" in prompted.info["infotexts"][0]
    assert "module prompt" not in plain.info["infotexts"][0]
    pasted = webui.png_info(prompted.png[0])["parameters"]
    assert pasted["SingDiffusion module prompt"] == "red car, at night"


def test_an_sd_latent_module_on_sdxl_is_refused_naming_both_sides(webui, on_sdxl, sing_module):
    for module in (sing_module.name, OMS_SD):
        with pytest.raises(WebuiApiError) as refused:
            webui.txt2img(prompt="a cube", seed=66, **sing(module=module))
        assert refused.value.status == 422
        detail = refused.value.body["detail"]
        assert "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL (SDXL latents)" in detail
        assert "choose an SDXL module" in detail
    assert webui.txt2img(prompt="a cube", seed=66).image.shape == (64, 64, 3)  # the server keeps serving


def test_an_sdxl_module_on_sd1_is_refused_naming_both_sides(webui, oms_modules, host_checkpoint):
    webui.use_checkpoint(host_checkpoint.name)
    with pytest.raises(WebuiApiError) as refused:
        webui.txt2img(prompt="a cube", seed=67, **sing(module=OMS_XL))
    assert refused.value.status == 422
    detail = refused.value.body["detail"]
    assert "the module predicts SDXL latents and the checkpoint is SD-1.x (SD-1.x/2.x latents)" in detail
    assert "an SD-1.x/2.x module" in detail
    assert webui.txt2img(prompt="a cube", seed=67).image.shape == (64, 64, 3)


def test_a_zero_terminal_snr_schedule_skips_the_module_with_its_note(webui, webui_log, on_sdxl):
    settings = {"prompt": "a red cube", "seed": 68, "sampler_name": "Euler"}
    with webui.temporary_options(sd_noise_schedule="Zero Terminal SNR"):
        skipped = webui.txt2img(**settings, **sing(module=OMS_MIX))
        plain = webui.txt2img(**settings)
    assert np.array_equal(skipped.image, plain.image)
    infotext = skipped.info["infotexts"][0]
    assert "SingDiffusion skipped:" in infotext
    assert "zero terminal SNR" in infotext
    webui_log.wait_for("samples from zero terminal SNR")


def test_sdxl_hires_fix_runs_the_module_in_the_first_pass_only(webui, on_sdxl):
    probe.reset(webui)
    hires = {"enable_hr": True, "hr_scale": 2, "hr_upscaler": "Latent", "hr_second_pass_steps": 2,
             "denoising_strength": 0.5, **dict(HOST.hires_fields)}
    on = webui.txt2img(prompt="a red cube", seed=69, **hires, **sing(module=OMS_MIX))
    first, second = probe.captures(webui)
    assert (first.is_hr_pass, second.is_hr_pass) == (False, True)
    x0_hat = oms_x0(on_sdxl[OMS_MIX], first.noise, first.text_cond, None, 1.0)
    torch.testing.assert_close(first.x, step_to_first_point(first, x0_hat), rtol=1e-4, atol=1e-3)
    assert on.image.shape == (128, 128, 3)
    assert f"SingDiffusion: {OMS_MIX} [" in on.info["infotexts"][0]
