"""A module removed from its folder after the webui listed it: 422 naming the module and saying it is gone."""

from __future__ import annotations

import shutil

import pytest
from webui_client import WebuiApiError

pytestmark = pytest.mark.live


def enabled(name: str) -> dict:
    return {"alwayson_scripts": {"SingDiffusion": {"args": [{"enabled": True, "module": name}]}}}


def gone_detail(webui, name: str) -> str:
    with pytest.raises(WebuiApiError) as raised:
        webui.txt2img(prompt="a cube", seed=71, **enabled(name))
    assert raised.value.status == 422, raised.value.body
    return raised.value.body["detail"]


@pytest.mark.parametrize("used_before", [False, True], ids=["listed", "listed-and-loaded"])
def test_a_removed_module_answers_422_saying_it_is_gone(webui, build_sing_module, used_before):
    module = build_sing_module(f"gone-{'loaded' if used_before else 'listed'}")
    webui.post("/singdiffusion/v1/refresh")
    assert module.name in [row["name"] for row in webui.get("/singdiffusion/v1/modules")["modules"]]
    if used_before:
        webui.txt2img(prompt="a cube", seed=71, **enabled(module.name))  # loaded and cached
    shutil.rmtree(module.folder)
    detail = gone_detail(webui, module.name)
    assert f"module '{module.name}' is gone" in detail
    assert "refresh" in detail
    assert "Errno" not in detail
    assert webui.txt2img(prompt="a cube", seed=71).image.shape == (64, 64, 3)  # the server keeps serving
