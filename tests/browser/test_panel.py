"""The SingDiffusion panel in a real browser: both tabs, generating with it, the Modules accordion, presets that
follow the checkpoint."""

from __future__ import annotations

import time

import pytest
from webui_page import choose, panel, panel_state, wait_panel

pytestmark = pytest.mark.browser

API = "/singdiffusion/v1"
CHECKPOINT_DROPDOWN = "#setting_sd_model_checkpoint"


def title_of(webui, name: str) -> str:
    return next(c["title"] for c in webui.checkpoints() if c["model_name"] == name)


def generate(page, tab: str = "txt2img") -> str:
    """Press Generate and return the infotext shown under the result."""
    read = f"return gradioApp().querySelector('#html_info_{tab}').innerText"
    before = page.run(read)  # each generation draws a new seed, so its infotext differs from the last one
    page.click(f"#{tab}_generate")
    return page.wait_for(f"const t = (() => {{ {read} }})(); return t !== arguments[0] && t.includes('Steps:') && t",
                         before, timeout=120, what="the generation's infotext")


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_the_panel_is_in_both_tabs_closed_and_off(page, tab, sing_module, no_presets, screenshot_dir):
    if tab == "img2img":
        page.run("switch_to_img2img()")  # the webui's own tab switch
    state = panel_state(page, tab)
    assert state["open"] is False
    assert state["enabled"] is False
    assert state["follow"] is True
    assert state["module"] == sing_module.name
    assert state["guidance"] == 0
    assert state["text_source"] == "auto"
    labels = page.run("return Array.from(gradioApp().querySelectorAll(arguments[0] + ' span'))"
                      ".map(s => s.innerText.trim()).filter(Boolean)", f"{panel(tab)}enabled")
    expected = ("SingDiffusion", "Module", "Module guidance", "Text encoder", "Follow the preset for this checkpoint")
    assert set(expected) <= set(labels)
    # hints: javascript/singdiffusion.js's on labels (hints.js applies them a second after the page settles),
    # Python's tooltip= on buttons
    hinted = page.wait_for("return Array.from(gradioApp().querySelectorAll(arguments[0] + ' [title]'))"
                           ".map(e => e.title).join('\\n').includes('DDIM step') && true", f"{panel(tab)}enabled",
                           what="the panel's hints")
    assert hinted
    assert "following switches on" in page.run("return gradioApp().querySelector(arguments[0]).title",
                                                f"{panel(tab)}save_preset")


def test_toggling_the_panel_and_generating(page, sing_module, no_presets, screenshot_dir):
    page.click(f"{panel('txt2img')}enabled .label-wrap")
    state = wait_panel(page, "txt2img", "after opening the panel", enabled=True, open=True)
    assert state["follow"] is False  # a change by hand: what is shown is what is used
    infotext = generate(page)
    assert f"SingDiffusion: {sing_module.name} [" in infotext
    page.screenshot(screenshot_dir / "panel.png", f"{panel('txt2img')}enabled")
    page.click(f"{panel('txt2img')}enabled .label-wrap")
    wait_panel(page, "txt2img", "after closing the panel", enabled=False)
    assert "SingDiffusion" not in generate(page)


def test_the_modules_accordion_lists_modules_when_opened(page, sing_module, no_presets, screenshot_dir):
    page.click(f"{panel('txt2img')}enabled .label-wrap")
    page.click(f"{panel('txt2img')}modules .label-wrap")
    table = page.wait_for("const t = gradioApp().querySelector(arguments[0]).innerText;"
                          "return t.includes(arguments[1]) && t", f"{panel('txt2img')}modules_table", sing_module.name,
                          what="the module table")
    row = next(line for line in table.splitlines() if line.startswith(sing_module.name))
    assert row.split("\t")[2:4] == ["4", "32"]  # latent channels, cross-attention width
    page.screenshot(screenshot_dir / "panel-modules.png", f"{panel('txt2img')}enabled")


def test_the_panel_follows_a_checkpoint_switch(page, webui, host_checkpoint, build_host_checkpoint, sing_module,
                                               no_presets):
    other = build_host_checkpoint("tiny-sd1-t48", seed=2, text_width=48)
    webui.refresh_checkpoints()
    webui.request("PUT", f"{API}/presets/{host_checkpoint.name}",
                  {"enabled": True, "module": sing_module.name, "guidance_scale": 3.0})
    webui.request("PUT", f"{API}/presets/{other.name}", {"enabled": False, "guidance_scale": 1.5,
                                                        "text_source": "module"})
    page.open(page.run("return location.href"))  # reload: the page picks up the checkpoint list and presets
    page.wait_for("return typeof opts !== 'undefined' && Object.keys(opts).length > 0", what="options")
    wait_panel(page, "txt2img", "on load", enabled=True, open=True, guidance=3.0, follow=True, status="Following")

    page.run("gradioApp().querySelector('#quicksettings').scrollIntoView()")
    choose(page, CHECKPOINT_DROPDOWN, title_of(webui, other.name))
    for tab in ("txt2img", "img2img"):
        state = wait_panel(page, tab, "after switching checkpoint", enabled=False, guidance=1.5, text_source="module")
        assert state["follow"] is True
        assert other.name in state["status"]
    choose(page, CHECKPOINT_DROPDOWN, title_of(webui, host_checkpoint.name))
    wait_panel(page, "txt2img", "after switching back", enabled=True, guidance=3.0, text_source="auto")

    # an edit by hand stops following; the next switch leaves the panel as the user set it
    page.click(f"{panel('txt2img')}text_source label:nth-of-type(3)")
    wait_panel(page, "txt2img", "after choosing 'host' by hand", follow=False, text_source="host", status="")
    choose(page, CHECKPOINT_DROPDOWN, title_of(webui, other.name))
    page.wait_for("return opts.sd_model_checkpoint === arguments[0]", title_of(webui, other.name), what="the switch")
    time.sleep(1.5)
    state = panel_state(page, "txt2img")
    assert (state["enabled"], state["guidance"], state["text_source"]) == (True, 3.0, "host")


def test_saving_a_preset_from_the_panel(page, webui, host_checkpoint, build_host_checkpoint, sing_module, no_presets):
    page.click(f"{panel('txt2img')}enabled .label-wrap")
    page.click(f"{panel('txt2img')}text_source label:nth-of-type(2)")
    page.click(f"{panel('txt2img')}save_preset")
    wait_panel(page, "txt2img", "after saving", follow=True, status="Saved as the preset")
    saved = webui.get(f"{API}/presets")["presets"][title_of(webui, host_checkpoint.name)]
    assert (saved["enabled"], saved["module"], saved["text_source"]) == (True, sing_module.name, "module")

    odd = build_host_checkpoint("tiny-sd1-c8", seed=1, latent_channels=8)
    webui.refresh_checkpoints()
    page.open(page.run("return location.href"))
    page.wait_for("return typeof opts !== 'undefined' && Object.keys(opts).length > 0", what="options")
    choose(page, CHECKPOINT_DROPDOWN, title_of(webui, odd.name))
    wait_panel(page, "txt2img", "on the 8-channel checkpoint", status="No preset")
    page.click(f"{panel('txt2img')}enabled .label-wrap")
    page.click(f"{panel('txt2img')}save_preset")
    state = wait_panel(page, "txt2img", "after a refused save", status="cannot enable")
    assert "8-channel latents" in state["status"]
    assert title_of(webui, odd.name) not in webui.get(f"{API}/presets")["presets"]
