"""After "Reload UI" (the webui re-runs every script file and rebuilds the UI and the API): nothing is registered
twice and nothing is lost. Runs last in the browser tier: the page reloads."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from webui_page import wait_panel

pytestmark = pytest.mark.browser

API = "/singdiffusion/v1"
AXES = ("SingDiffusion enabled", "SingDiffusion guidance", "SingDiffusion module")


def test_reload_ui_registers_everything_once(page, webui, webui_server, host_checkpoint, sing_module):
    before = webui_server.log_text().count("Startup time:")
    page.run("gradioApp().getElementById('settings_restart_gradio').click()")
    deadline = time.monotonic() + 120
    while webui_server.log_text().count("Startup time:") == before:
        assert time.monotonic() < deadline, "the UI did not come back within 120 s"
        time.sleep(0.5)

    for script in (s for s in webui.script_info() if s["name"] == "x/y/z plot"):
        assert [script["args"][0]["choices"].count(axis) for axis in AXES] == [1, 1, 1]
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
        page.open(webui_server.url)
        page.wait_for("return typeof opts !== 'undefined' && Object.keys(opts).length > 0 && "
                      "!!gradioApp().querySelector('#script_txt2img_singdiffusion_enabled-visible-checkbox')",
                      timeout=120, what="the reloaded page")
        wait_panel(page, "txt2img", "after the reload", enabled=True, guidance=2.0, follow=True)
    finally:
        webui.request("DELETE", f"{API}/presets/{title}")
