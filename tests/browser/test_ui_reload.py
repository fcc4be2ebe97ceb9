"""After "Reload UI" (the webui re-runs every script file and rebuilds the UI and the API): nothing is registered
twice and nothing is lost. Runs last in the browser tier: the page reloads."""

from __future__ import annotations

import urllib.parse

import pytest
from webui_page import open_panel_page, switch_to, wait_panel

pytestmark = pytest.mark.browser

API = "/singdiffusion/v1"
AXES = ("SingDiffusion enabled", "SingDiffusion guidance", "SingDiffusion strength", "SingDiffusion module")
STARTED = "Startup time:"
RESTARTING = "Restarting UI..."


def test_reload_ui_registers_everything_once(page, webui, webui_server, host_checkpoint, sing_module):
    def count(line: str) -> int:
        return webui_server.log_text().count(line)

    restarts, starts = count(RESTARTING), count(STARTED)
    switch_to(page, "settings")
    page.click("settings_restart_gradio")  # the user's "Reload UI"
    page.wait(lambda _: count(RESTARTING) > restarts, what="the webui to take the restart")
    # The page now pings the server every 0.5 s to reload itself once it is back; A1111 v1.10.1 dies if a request
    # reaches its new app between the launch and create_api() (starlette then refuses the API's middleware:
    # "Cannot add middleware after an application has started"). So the page leaves while the server restarts.
    page.open("about:blank")
    page.wait(lambda _: count(STARTED) > starts, what="the webui's restart", timeout=180)
    assert (count(RESTARTING), count(STARTED)) == (restarts + 1, starts + 1)

    xyz = [script for script in webui.script_info() if script["name"] == "x/y/z plot"]
    assert sorted(script["is_img2img"] for script in xyz) == [False, True]  # exactly one per tab, before the loop
    for script in xyz:
        assert [script["args"][0]["choices"].count(axis) for axis in AXES] == [1] * len(AXES)
    options = webui.options()
    assert options["singdiffusion_memory"] == "keep on device"
    title = urllib.parse.quote(next(c["title"] for c in webui.checkpoints() if c["model_name"] == host_checkpoint.name),
                               safe="")
    try:
        webui.request("PUT", f"{API}/presets/{title}", {"enabled": True, "module": sing_module.name,
                                                        "guidance_scale": 2.0})
        followed = webui.txt2img(seed=3).info["infotexts"][0]
        assert "SingDiffusion guidance: 2," in followed
        explicit = webui.txt2img(seed=3, alwayson_scripts={"SingDiffusion": {"args": [False]}}).info["infotexts"][0]
        assert "SingDiffusion" not in explicit  # the API wrapper is still in place, once
        open_panel_page(page, webui_server.url)
        wait_panel(page, "txt2img", "after the reload", enabled=True, guidance=2.0, follow=True)
    finally:
        webui.request("DELETE", f"{API}/presets/{title}")
