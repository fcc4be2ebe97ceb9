"""SingDiffusion across the webui's passes: hires fix, batch count, img2img and inpainting, infotext pasting."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import probe
import pytest
import torch
from live_hosts import HOST
from start_math import expected_first_input
from test_singdiffusion import sing
from webui_client import decode_png, encode_png

from sing_core.args import from_infotext

pytestmark = pytest.mark.live

APPLIED = re.compile(r"SingDiffusion: tiny-sing \[[0-9a-f]{10}\] on \d+ latents")


@pytest.fixture
def timings(webui):
    with webui.temporary_options(singdiffusion_timings=True):
        yield


def test_hires_fix_runs_the_module_in_the_first_pass_only(webui, webui_log, sing_module, timings):
    """A1111 calls the hook twice (first pass, hires pass), Forge three times (the hires pass twice)."""
    probe.reset(webui)
    hires = {"enable_hr": True, "hr_scale": 2, "hr_upscaler": "Latent", "hr_second_pass_steps": 2,
             "denoising_strength": 0.5, **dict(HOST.hires_fields)}
    on = webui.txt2img(prompt="a cube", seed=41, **hires, **sing(True, sing_module.name, 0.0, "host"))
    first, second = probe.captures(webui)
    assert (first.is_hr_pass, second.is_hr_pass) == (False, True)
    torch.testing.assert_close(first.x, expected_first_input(first, sing_module.folder, 7.0), rtol=1e-4, atol=1e-3)
    assert len(APPLIED.findall(webui_log.wait_for("on 1 latents"))) == 1
    assert on.image.shape == (128, 128, 3)
    off = webui.txt2img(prompt="a cube", seed=41, **hires)
    assert not np.array_equal(on.image, off.image)


def test_every_batch_of_a_batch_count_starts_once_from_the_module(webui, webui_log, sing_module, timings):
    probe.reset(webui)
    webui.txt2img(prompt="a cube", seed=42, n_iter=2, batch_size=2, **sing(True, sing_module.name, 0.0, "host"))
    captures = probe.captures(webui)
    assert [c.iteration for c in captures] == [0, 1]
    for capture in captures:
        torch.testing.assert_close(capture.x, expected_first_input(capture, sing_module.folder, 7.0),
                                   rtol=1e-4, atol=1e-3)
    webui_log.wait_for("on 2 latents")
    assert len(APPLIED.findall(webui_log.text())) == 2


def img2img_after_priming(webui, image, **settings):
    """The webui's img2img encodes the image with the VAE's sampled posterior, drawn from torch's global RNG, whose
    state the previous request left behind: the same priming request first makes two requests comparable."""
    webui.img2img(image, **{k: v for k, v in settings.items() if k != "alwayson_scripts"})
    return webui.img2img(image, **settings)


def test_img2img_from_an_image_is_left_alone_and_says_why_once(webui, webui_log, sing_module):
    image = np.full((64, 64, 3), 90, dtype=np.uint8)
    settings = {"prompt": "a cube", "seed": 43, "denoising_strength": 0.75, "n_iter": 2}
    off = img2img_after_priming(webui, image, **settings)
    on = img2img_after_priming(webui, image, **settings, **sing(True, sing_module.name))
    assert all(np.array_equal(a, b) for a, b in zip(on.images, off.images, strict=True))
    assert webui_log.text().count("img2img at denoising strength 0.75 starts from the image") == 1
    assert "SingDiffusion" not in on.info["infotexts"][0]
    full = img2img_after_priming(webui, image, **{**settings, "denoising_strength": 1.0},
                                 **sing(True, sing_module.name))
    plain = img2img_after_priming(webui, image, **{**settings, "denoising_strength": 1.0})
    assert np.array_equal(full.image, plain.image)  # no mask: the start still holds the image
    assert "no mask, or masked content" in webui_log.text()


@pytest.mark.parametrize("sampler", ["Euler", "DDIM"])
@pytest.mark.parametrize(("fill", "fill_name"), [(2, "latent noise"), (3, "latent nothing")])
def test_inpainting_from_nothing_starts_the_masked_region_from_the_module(webui, sing_module, sampler, fill,
                                                                          fill_name):
    image = np.full((64, 64, 3), 90, dtype=np.uint8)
    mask = np.zeros((64, 64, 3), dtype=np.uint8)
    mask[:, :32] = 255  # the left half is repainted, the right half kept
    settings = {"prompt": "a cube", "seed": 44, "denoising_strength": 1.0, "sampler_name": sampler,
                "mask": encode_png(mask), "mask_blur": 0, "inpainting_fill": fill, "inpaint_full_res": False}

    def first_capture(**extra):
        webui.img2img(image, **settings)  # the VAE's posterior sample: see img2img_after_priming
        probe.reset(webui)
        result = webui.img2img(image, **settings, **extra)
        return result, probe.captures(webui)[0]

    off, capture_off = first_capture()
    on, capture_on = first_capture(**sing(True, sing_module.name, 0.0, "host"))
    assert f"Masked content: {fill_name}" in on.info["infotexts"][0]
    assert "SingDiffusion: tiny-sing" in on.info["infotexts"][0]
    masked, kept = (..., slice(None), slice(0, 4)), (..., slice(None), slice(4, None))  # latent columns
    torch.testing.assert_close(capture_on.x[kept], capture_off.x[kept], rtol=0, atol=0)
    # DDIM img2img noises the start to timesteps[t_enc] = 751 for 4 steps at denoising 1.0 (then first calls the
    # model at 501): the module's start replaces that construction at the same noise level.
    expected = expected_first_input(capture_on, sing_module.folder, 7.0, timestep=751 if sampler == "DDIM" else None)
    torch.testing.assert_close(capture_on.x[masked], expected[masked], rtol=1e-4, atol=1e-3)
    assert not torch.allclose(capture_on.x[masked], capture_off.x[masked])
    assert np.array_equal(on.image[:, 40:], off.image[:, 40:])  # far from the seam the kept pixels are untouched


def generate_from_infotext(webui, infotext):
    """A request carrying nothing but infotext: the API applies it to every field and script argument."""
    answer = webui.post("/sdapi/v1/txt2img", {"infotext": infotext})
    return decode_png(base64.b64decode(answer["images"][0])), json.loads(answer["info"])["infotexts"][0]


@pytest.mark.skipif(HOST is not None and not HOST.api_infotext,
                    reason="this webui's API cannot take an infotext field (Forge: HTTP 500 from its api.py); "
                           "test_png_info_gives_the_args_that_remake_the_generation covers it")
def test_pasting_the_infotext_restores_the_generation(webui, sing_module):
    made = webui.txt2img(prompt="a cube", seed=45, cfg_scale=5.0, **sing(True, sing_module.name, 2.5, "module"))
    infotext = made.info["infotexts"][0]
    assert "SingDiffusion guidance: 2.5" in infotext
    image, again = generate_from_infotext(webui, infotext)
    assert np.array_equal(image, made.image)
    assert "SingDiffusion: tiny-sing [" in again
    assert "SingDiffusion text source: module" in again
    plain = webui.txt2img(prompt="a cube", seed=45, cfg_scale=5.0)
    image, again = generate_from_infotext(webui, plain.info["infotexts"][0])
    assert np.array_equal(image, plain.image)  # an image made without SingDiffusion is remade without it
    assert "SingDiffusion" not in again


def test_png_info_gives_the_args_that_remake_the_generation(webui, sing_module):
    """What an API user does where the infotext field is not available (Forge): the webui's own reading of the
    PNG (/sdapi/v1/png-info), its SingDiffusion keys read as the panel reads them when pasted, sent as dict args."""
    made = webui.txt2img(prompt="a cube", seed=46, cfg_scale=5.0, **sing(True, sing_module.name, 2.5, "module"))
    parameters = webui.png_info(made.png[0])["parameters"]
    named = from_infotext(parameters)
    assert named == {"enabled": True, "module": sing_module.name, "guidance_scale": 2.5, "text_source": "module",
                     "strength": 1.0, "follow_preset": False, "module_prompt": ""}
    again = webui.txt2img(prompt=parameters["Prompt"], seed=int(parameters["Seed"]),
                          cfg_scale=float(parameters["CFG scale"]), **sing(**named))
    assert np.array_equal(again.image, made.image)
    plain = webui.txt2img(prompt="a cube", seed=46, cfg_scale=5.0)
    assert from_infotext(webui.png_info(plain.png[0])["parameters"])["enabled"] is False  # read as off
