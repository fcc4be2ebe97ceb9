"""SingDiffusion inside a real AUTOMATIC1111 v1.10.1: the AlwaysOn script through the HTTP API."""

from __future__ import annotations

import re

import numpy as np
import pytest
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
