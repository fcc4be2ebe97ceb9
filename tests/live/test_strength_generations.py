"""The strength λ in a live webui: the sampler's real first input, infotext and paste, the X/Y/Z axis."""

from __future__ import annotations

import numpy as np
import probe
import pytest
import torch
from start_math import expected_first_input

pytestmark = pytest.mark.live

AXIS = "SingDiffusion strength"
BASE = {"prompt": "a red cube", "seed": 61, "steps": 4, "cfg_scale": 5.0}


def sing(**named) -> dict:
    return {"alwayson_scripts": {"SingDiffusion": {"args": [named]}}}


@pytest.mark.parametrize("sampler", ["Euler", "DDIM"])  # a σ sampler and a timestep sampler
def test_the_first_input_at_half_strength(webui, sing_module, sampler):
    probe.reset(webui)
    webui.txt2img(**BASE, sampler_name=sampler,
                  **sing(enabled=True, module=sing_module.name, text_source="host", strength=0.5))
    (capture,) = probe.captures(webui)
    expected = expected_first_input(capture, sing_module.folder, guidance_scale=5.0, strength=0.5)
    torch.testing.assert_close(capture.x, expected, rtol=1e-4, atol=1e-3)
    full = expected_first_input(capture, sing_module.folder, guidance_scale=5.0)
    assert not torch.allclose(capture.x, full, atol=1e-2)  # λ really reached the sampler


def test_zero_strength_is_the_plain_gaussian_start(webui, sing_module):
    off = webui.txt2img(**BASE)
    zero = webui.txt2img(**BASE, **sing(enabled=True, module=sing_module.name, strength=0.0))
    assert np.array_equal(zero.image, off.image)  # σ form: x1 + 0·x̂0/σ0 is x1 itself


def test_positional_args_without_strength_keep_their_meaning(webui, sing_module):
    five = webui.txt2img(**BASE, alwayson_scripts={"SingDiffusion": {"args": [True, sing_module.name, 0.0, "host",
                                                                              False]}})
    named = webui.txt2img(**BASE, **sing(enabled=True, module=sing_module.name, text_source="host", strength=1.0,
                                         follow_preset=False))
    assert np.array_equal(five.image, named.image)
    assert "SingDiffusion strength" not in five.info["infotexts"][0]  # written only when it is not 1


def test_strength_in_infotext_survives_png_info(webui, sing_module):
    result = webui.txt2img(**BASE, **sing(enabled=True, module=sing_module.name, strength=0.5))
    assert "SingDiffusion strength: 0.5" in result.info["infotexts"][0]
    assert webui.png_info(result.png[0])["parameters"]["SingDiffusion strength"] == "0.5"


@pytest.mark.parametrize("is_img2img", [False, True])
def test_the_strength_axis_is_registered_once(webui, is_img2img):
    script = next(s for s in webui.script_info() if s["name"] == "x/y/z plot" and s["is_img2img"] == is_img2img)
    assert script["args"][0]["choices"].count(AXIS) == 1


def test_xyz_plot_over_strength_equals_single_generations(webui, sing_module):
    script = next(s for s in webui.script_info() if s["name"] == "x/y/z plot" and not s["is_img2img"])
    labels = script["args"][0]["choices"]
    axes = [labels.index(AXIS), "0.5, 2", None, labels.index("Nothing"), "", None, labels.index("Nothing"), "", None]
    # draw legend, include sub images, include sub grids, keep -1 seeds, vary seeds x/y/z, margin, text inputs
    plot = webui.txt2img(**BASE, script_name="x/y/z plot",
                         script_args=[*axes, True, True, False, False, False, False, False, 0, False],
                         **sing(enabled=True, module=sing_module.name))
    cells, infotexts = plot.images[1:3], plot.info["infotexts"][1:3]
    assert len(plot.images) == 1 + 2
    for strength, image, text in zip((0.5, 2.0), cells, infotexts, strict=True):
        assert f"SingDiffusion strength: {strength:g}" in text
        alone = webui.txt2img(**BASE, **sing(enabled=True, module=sing_module.name, strength=strength))
        assert np.array_equal(image, alone.image)
