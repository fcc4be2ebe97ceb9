"""The X/Y/Z plot axes "SingDiffusion enabled / guidance / module" through the API of a live webui."""

from __future__ import annotations

import numpy as np
import pytest
from webui_client import WebuiApiError

pytestmark = pytest.mark.live

AXES = ("SingDiffusion enabled", "SingDiffusion guidance", "SingDiffusion module")
BASE = {"prompt": "a red cube", "seed": 41}


def xyz_script(webui, is_img2img=False) -> dict:
    return next(s for s in webui.script_info() if s["name"] == "x/y/z plot" and s["is_img2img"] == is_img2img)


def xyz_args(webui, x, y, z) -> list:
    """script_args of the X/Y/Z plot: each axis (label, text values, dropdown values); sub-images included."""
    labels = xyz_script(webui)["args"][0]["choices"]
    args = []
    for label, text, listed in (x, y, z):
        args += [labels.index(label), text, listed]
    # draw legend, include sub images, include sub grids, keep -1 seeds, vary seeds x/y/z, margin, text inputs
    return [*args, True, True, False, False, False, False, False, 0, False]


@pytest.mark.parametrize("is_img2img", [False, True])
def test_the_axes_are_registered_once_in_both_tabs(webui, is_img2img):
    script = xyz_script(webui, is_img2img)
    labels = script["args"][0]["choices"]
    assert [labels.count(axis) for axis in AXES] == [1, 1, 1]


def test_xyz_plot_request_with_the_singdiffusion_axes(webui, sing_module, build_sing_module):
    other = build_sing_module("xyz-other", seed=5, mean_offset=-1.0)
    args = xyz_args(webui, ("SingDiffusion enabled", "", ["False", "True"]), ("SingDiffusion guidance", "1, 4", None),
                    ("SingDiffusion module", "", [sing_module.name, other.name]))
    plot = webui.txt2img(**BASE, script_name="x/y/z plot", script_args=args,
                         alwayson_scripts={"SingDiffusion": {"args": [{"enabled": False}]}})
    # the grid, then the 2 × 2 × 2 cells in X-fastest order (no sub-grids)
    cells, infotexts = plot.images[1:9], plot.info["infotexts"][1:9]
    assert len(plot.images) == 1 + 8
    off = webui.txt2img(**BASE, alwayson_scripts={"SingDiffusion": {"args": [False]}}).image
    for index, (image, text) in enumerate(zip(cells, infotexts, strict=True)):
        enabled, guidance, module = index % 2 == 1, (1, 4)[index // 2 % 2], (sing_module.name, other.name)[index // 4]
        if not enabled:
            assert "SingDiffusion" not in text  # no leak from the cell before
            assert np.array_equal(image, off)
            continue
        assert f"SingDiffusion: {module} [" in text
        assert f"SingDiffusion guidance: {guidance}," in text
        alone = webui.txt2img(**BASE, alwayson_scripts={"SingDiffusion": {"args": [True, module, float(guidance)]}})
        assert np.array_equal(image, alone.image)


def test_an_unknown_module_on_the_axis_stops_the_plot_with_a_message(webui, sing_module):
    args = xyz_args(webui, ("SingDiffusion module", f"{sing_module.name}, no-such-module", None),
                    ("Nothing", "", None), ("Nothing", "", None))
    args[-1] = True  # text inputs: the values as typed
    with pytest.raises(WebuiApiError) as refused:
        webui.txt2img(**BASE, script_name="x/y/z plot", script_args=args)
    assert refused.value.status == 422
    assert "'no-such-module' is not installed" in refused.value.body["detail"]
