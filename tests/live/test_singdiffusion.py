"""SingDiffusion inside a real AUTOMATIC1111 v1.10.1: the AlwaysOn script through the HTTP API."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import probe
import pytest
import torch
from live_hosts import HOST
from start_math import expected_first_input
from webui_client import WebuiApiError

pytestmark = pytest.mark.live

TITLE = "SingDiffusion"


def sing(*args, **named) -> dict:
    """alwayson_scripts for SingDiffusion: positional args, or one dict of named args."""
    return {"alwayson_scripts": {TITLE: {"args": [named] if named else list(args)}}}


def test_on_and_off_differ_and_off_equals_no_script_args(webui, sing_module):
    base = {"prompt": "a red cube", "seed": 21}
    absent = webui.txt2img(**base)
    off = webui.txt2img(**base, **sing(False, sing_module.name))
    on = webui.txt2img(**base, **sing(True, sing_module.name))
    assert np.array_equal(off.image, absent.image)
    assert not np.array_equal(on.image, off.image)
    assert "SingDiffusion" not in off.info["infotexts"][0]


def test_same_seed_gives_the_same_image_with_the_module(webui, sing_module):
    first = webui.txt2img(prompt="a red cube", seed=22, **sing(True, sing_module.name))
    second = webui.txt2img(prompt="a red cube", seed=22, **sing(True, sing_module.name))
    assert np.array_equal(first.image, second.image)


def test_dict_args_equal_positional_args(webui, sing_module):
    positional = webui.txt2img(prompt="a cube", seed=23, **sing(True, sing_module.name, 3.0, "host"))
    named = webui.txt2img(prompt="a cube", seed=23, **sing(enabled=True, module=sing_module.name,
                                                           guidance_scale=3.0, text_source="host"))
    assert np.array_equal(positional.image, named.image)


def test_infotext_names_module_hash_and_guidance_and_survives_png_info(webui, sing_module):
    result = webui.txt2img(prompt="a cube", seed=24, cfg_scale=6.0, **sing(True, sing_module.name, 0.0, "module"))
    infotext = result.info["infotexts"][0]
    label = re.search(r"SingDiffusion: (tiny-sing \[[0-9a-f]{10}\])", infotext)
    assert label is not None, infotext
    assert "SingDiffusion guidance: 6," in infotext  # 0 follows the CFG scale; the value used is recorded
    assert "SingDiffusion text source: module" in infotext
    parsed = webui.png_info(result.png[0])["parameters"]
    assert parsed["SingDiffusion"] == label.group(1)
    assert float(parsed["SingDiffusion guidance"]) == 6.0
    assert parsed["SingDiffusion text source"] == "module"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([{"enabled": True, "modul": "x"}], 422, "unknown SingDiffusion argument(s) 'modul'"),
        ([{"enabled": "yes"}], 422, "'enabled' must be true or false"),
        ([True, "tiny-sing", "strong"], 422, "'guidance_scale' must be a number"),
        ([True, "no-such-module"], 422, "'no-such-module' is not installed"),
        ([True, "../../etc/passwd"], 422, "is a path"),
        ([True, "tiny-sing", 1.0, "clip"], 422, "'text_source' must be one of auto, module, host"),
    ],
)
def test_bad_arguments_give_an_http_error_with_a_message(webui, sing_module, args, status, message):
    with pytest.raises(WebuiApiError) as raised:
        webui.txt2img(prompt="a cube", seed=25, alwayson_scripts={TITLE: {"args": args}})
    assert raised.value.status == status
    assert message in raised.value.body["detail"]
    assert webui.txt2img(prompt="a cube", seed=25).image.shape == (64, 64, 3)  # the server keeps serving


SAMPLERS = [("Euler", "Automatic"), ("Euler a", "Automatic"), ("DPM++ 2M", "Karras"), ("DDIM", "Automatic"),
            ("UniPC", "Automatic"), ("DDIM CFG++", "Automatic"), ("PLMS", "Automatic"), ("LCM", "Automatic"),
            *((name, "Automatic") for name in (HOST.extra_samplers if HOST else ()))]


@pytest.mark.parametrize(("sampler", "scheduler"), SAMPLERS)
def test_the_sampler_starts_exactly_at_the_ddim_step_from_the_module(webui, sing_module, sampler, scheduler):
    probe.reset(webui)
    settings = {"prompt": "a red cube", "seed": 31, "steps": 4, "cfg_scale": 5.0, "batch_size": 2,
                "sampler_name": sampler, "scheduler": scheduler}
    on = webui.txt2img(**settings, **sing(True, sing_module.name, 0.0, "host"))
    (capture,) = probe.captures(webui)
    expected = expected_first_input(capture, sing_module.folder, guidance_scale=5.0)
    torch.testing.assert_close(capture.x, expected, rtol=1e-4, atol=1e-3)
    first_point = float(capture.sigma[0])
    if sampler in ("DDIM", "DDIM CFG++", "PLMS"):
        assert first_point == 751  # range(0, 1000, 1000 // 4) + 1, read from the sampler
    elif sampler == "UniPC":
        assert first_point == 999  # UniPC starts at the end of the schedule whatever the steps
    else:
        assert first_point == pytest.approx(14.6146, abs=1e-3)
    again = webui.txt2img(**settings, **sing(True, sing_module.name, 0.0, "host"))
    off = webui.txt2img(**settings)
    assert all(np.array_equal(a, b) for a, b in zip(on.images, again.images, strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(on.images, off.images, strict=True))


def test_the_sgm_noise_multiplier_moves_the_first_point(webui, sing_module):
    probe.reset(webui)
    with webui.temporary_options(sgm_noise_multiplier=True):
        webui.txt2img(prompt="a cube", seed=32, cfg_scale=4.0, **sing(True, sing_module.name, 0.0, "host"))
    (capture,) = probe.captures(webui)
    torch.testing.assert_close(capture.x, expected_first_input(capture, sing_module.folder, 4.0),
                               rtol=1e-4, atol=1e-3 * max(1.0, float(capture.sigma[0]) / 14.6))


def test_the_zero_terminal_snr_schedule_starts_from_noise_itself_and_skips_the_module(webui, webui_log, sing_module):
    """"Zero Terminal SNR" rescales the schedule to ᾱ ≈ 0 at its end: the sampler starts from pure noise, which the
    module's start would equal; the module does nothing, and the console and infotext say why."""
    probe.reset(webui)
    settings = {"prompt": "a cube", "seed": 32, "cfg_scale": 4.0}
    with webui.temporary_options(sd_noise_schedule="Zero Terminal SNR"):
        skipped = webui.txt2img(**settings, **sing(True, sing_module.name, 0.0, "host"))
        plain = webui.txt2img(**settings)
    first, _ = probe.captures(webui)
    torch.testing.assert_close(first.x, first.sigma.view(-1, 1, 1, 1) * first.noise)  # the host's own start
    assert np.array_equal(skipped.image, plain.image)
    assert "SingDiffusion skipped:" in skipped.info["infotexts"][0]
    webui_log.wait_for("samples from zero terminal SNR")


def test_at_cfg_scale_1_the_module_uses_the_prompt_alone_and_a_guidance_of_its_own_the_negative_prompt(
        webui, sing_module):
    """Guidance following CFG scale 1 is no guidance: the prompt alone (Forge computes no negative prompt there).
    A module guidance of its own at CFG scale 1 guides with the webui's own rows of the negative prompt (what Forge
    skips is computed with its encoder), the same rows the webui makes for it at CFG scale 2."""
    settings = {"prompt": "a red cube", "negative_prompt": "blurry", "seed": 35, "batch_size": 2}
    probe.reset(webui)
    webui.txt2img(**settings, cfg_scale=1.0, **sing(True, sing_module.name, 0.0, "host"))
    webui.txt2img(**settings, cfg_scale=2.0, **sing(True, sing_module.name, 0.0, "host"))
    explicit = webui.txt2img(**settings, cfg_scale=1.0, **sing(True, sing_module.name, 4.0, "host"))
    alone, at_cfg_2, guided = probe.captures(webui)
    torch.testing.assert_close(alone.x, expected_first_input(alone, sing_module.folder, 1.0), rtol=1e-4, atol=1e-3)
    with_negative = dataclasses.replace(guided, text_uncond=at_cfg_2.text_uncond)
    torch.testing.assert_close(guided.x, expected_first_input(with_negative, sing_module.folder, 4.0),
                               rtol=1e-4, atol=1e-3)
    assert not torch.allclose(guided.x, alone.x, atol=1e-3)
    assert "SingDiffusion guidance: 4," in explicit.info["infotexts"][0]


def test_step_zero_prompt_for_the_module_tokenizer(webui, text_sing_module):
    """text source 'module': emphasis, BREAK, prompt editing and alternation are resolved to the plain text that
    applies at step 0, so these prompts give the module the same text, and the sampler the same start."""
    def first_input(prompt):
        probe.reset(webui)
        webui.txt2img(prompt=prompt, seed=33, cfg_scale=1.0, **sing(True, text_sing_module.name, 0.0, "module"))
        return probe.captures(webui)[0].x

    plain = first_input("red cube")
    for same in ("(red:1.4) cube", "red BREAK cube", "[red:blue:0.9] cube", "[red|blue] cube", "((red)) cube",
                 "red cube <lora:nothing:0.8>"):
        torch.testing.assert_close(first_input(same), plain, msg=f"{same!r} should read as 'red cube' at step 0")
    assert not torch.allclose(first_input("blue cube"), plain, atol=1e-3)


def test_a_batch_mixing_prompts_uses_each_images_own_prompt(webui, text_sing_module):
    """The built-in Prompt matrix script puts four prompts in one batch; each image must equal the same image made
    alone, at the same seed: batch position and neighbours do not leak into the module's start."""
    args = sing(True, text_sing_module.name, 0.0, "host")
    matrix = webui.txt2img(prompt="a cube|red|blue", seed=34, batch_size=4, script_name="prompt matrix",
                           script_args=[False, False, "positive", "comma", 0], **args)
    images = [image for image in matrix.images if image.shape == (64, 64, 3)][-4:]
    prompts = ["a cube", "a cube, red", "a cube, blue", "a cube, red, blue"]
    alone = [webui.txt2img(prompt=prompt, seed=34, **args).image for prompt in prompts]
    for prompt, batched, single in zip(prompts, images, alone, strict=True):
        difference = np.abs(batched.astype(int) - single.astype(int))
        assert difference.max() <= 2, f"{prompt!r}: batched and alone differ by {difference.max()}"
    assert len({image.tobytes() for image in images}) == 4
