"""The SingDiffusion panel in a real browser: both tabs, generating with it, the Modules accordion, presets that
follow the checkpoint."""

from __future__ import annotations

import pytest
from live_hosts import HOST
from webui_page import (
    choose_checkpoint,
    open_panel,
    open_panel_page,
    panel_id,
    panel_shows,
    panel_state,
    switch_to,
    wait_panel,
)

pytestmark = pytest.mark.browser

API = "/singdiffusion/v1"


def title_of(webui, name: str) -> str:
    return next(c["title"] for c in webui.checkpoints() if c["model_name"] == name)


def generate(page, tab: str = "txt2img") -> str:
    """Press Generate and return the infotext shown under the result."""
    info = f"html_info_{tab}"
    before = page.text(info)  # each generation draws a new seed, so its infotext differs from the last one
    page.click(f"{tab}_generate")
    return page.wait(lambda _: (text := page.text(info)) != before and "Steps:" in text and text,
                     what="the generation's infotext", timeout=120)


def panel_texts(page, tab: str, css: str, attribute: str) -> list[str]:
    """`attribute` of every element matching `css` in the panel, closed parts included (a user opens them)."""
    return page.js("return Array.from(gradioApp().querySelectorAll('#' + arguments[0] + ' ' + arguments[1]))"
                   ".map(e => e[arguments[2]].trim()).filter(Boolean)", panel_id(tab), css, attribute)


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_the_panel_is_in_both_tabs_closed_and_off(page, tab, sing_module, no_presets):
    if tab == "img2img":
        switch_to(page, "img2img")  # as a user does: the tab's button
    state = panel_state(page, tab)
    assert state["open"] is False
    assert state["enabled"] is False
    assert state["follow"] is True
    assert state["module"] == sing_module.name
    assert state["guidance"] == 0
    assert state["strength"] == 1
    assert state["text_source"] == "auto"
    assert state["module_prompt"] == ""
    expected = ("SingDiffusion", "Module", "Module guidance", "Module strength", "Text encoder",
                "Follow the preset for this checkpoint", "Module prompt")
    assert set(expected) <= set(panel_texts(page, tab, "span", "innerText"))
    # hints: javascript/singdiffusion.js's on labels (hints.js applies them a second after the page settles),
    # Python's tooltip= on buttons
    page.wait(lambda _: any("DDIM step" in title for title in panel_texts(page, tab, "[title]", "title")),
              what="the panel's hints")
    assert "following switches on" in page.find(panel_id(tab, "save_preset")).get_attribute("title")


def test_toggling_the_panel_and_generating(page, sing_module, no_presets):
    state = open_panel(page, "txt2img")
    assert state["follow"] is False  # a change by hand: what is shown is what is used
    typed = page.find(panel_id("txt2img", "module_prompt"), "textarea")
    typed.send_keys("red car")
    typed.send_keys("\t")  # gradio takes the value on change
    infotext = generate(page)
    assert f"SingDiffusion: {sing_module.name} [" in infotext
    assert "SingDiffusion module prompt: red car" in infotext
    page.screenshot("panel.png", panel_id("txt2img"))
    typed.clear()
    typed.send_keys(" \b\t")
    page.click(panel_id("txt2img"), ".label-wrap")
    wait_panel(page, "txt2img", "after closing the panel", enabled=False)
    assert "SingDiffusion" not in generate(page)


def test_the_modules_accordion_lists_modules_when_opened(page, sing_module, no_presets):
    open_panel(page, "txt2img")
    page.click(panel_id("txt2img", "modules"), ".label-wrap")
    table = page.wait_js("const t = gradioApp().getElementById(arguments[0]).innerText;"
                         "return t.includes(arguments[1]) && t", panel_id("txt2img", "modules_table"),
                         sing_module.name, what="the module table")
    row = next(line for line in table.splitlines() if line.startswith(sing_module.name))
    assert row.split("\t")[2:4] == ["4", str(HOST.text_width)]  # latent channels, cross-attention width
    page.screenshot("panel-modules.png", panel_id("txt2img"))


def test_the_panel_follows_a_checkpoint_switch(page, webui, host_checkpoint, other_checkpoint, sing_module,
                                               no_presets):
    other = other_checkpoint
    webui.refresh_checkpoints()
    webui.request("PUT", f"{API}/presets/{host_checkpoint.name}",
                  {"enabled": True, "module": sing_module.name, "guidance_scale": 3.0})
    webui.request("PUT", f"{API}/presets/{other.name}", {"enabled": False, "guidance_scale": 1.5,
                                                        "text_source": "module"})
    open_panel_page(page, page.driver.current_url)  # reload: the page picks up the checkpoint list and presets
    wait_panel(page, "txt2img", "on load", enabled=True, open=True, guidance=3.0, follow=True, status="Following")

    choose_checkpoint(page, title_of(webui, other.name))
    for tab in ("txt2img", "img2img"):
        state = wait_panel(page, tab, "after switching checkpoint", enabled=False, guidance=1.5, text_source="module")
        assert state["follow"] is True
        assert other.name in state["status"]
    choose_checkpoint(page, title_of(webui, host_checkpoint.name))
    wait_panel(page, "txt2img", "after switching back", enabled=True, guidance=3.0, text_source="auto")

    # an edit by hand stops following; the next switch leaves the panel as the user set it
    page.click(panel_id("txt2img", "text_source"), "label:nth-of-type(3)")
    wait_panel(page, "txt2img", "after choosing 'host' by hand", follow=False, text_source="host", status="")
    chosen = choose_checkpoint(page, title_of(webui, other.name))
    # the page has taken the switch and pressed the hidden "load preset" button for it ...
    page.wait_js("return singdiffusionCheckpoint() === arguments[0] && singdiffusionShownCheckpoint === arguments[0]",
                 chosen, what="the switch")
    # ... whose answer, with following off, must change nothing: nothing to wait for, so watch the panel a while
    kept = {"enabled": True, "guidance": 3.0, "text_source": "host", "follow": False}
    page.holds(lambda _: panel_shows(panel_state(page, "txt2img"), kept), 2.0, what=f"the panel keeps {kept}")


def test_saving_a_preset_from_the_panel(page, webui, host_checkpoint, eight_channel_checkpoint, sing_module,
                                       no_presets):
    open_panel(page, "txt2img")
    page.click(panel_id("txt2img", "text_source"), "label:nth-of-type(2)")
    page.click(panel_id("txt2img", "save_preset"))
    wait_panel(page, "txt2img", "after saving", follow=True, status="Saved as the preset")
    saved = webui.get(f"{API}/presets")["presets"][title_of(webui, host_checkpoint.name)]
    assert (saved["enabled"], saved["module"], saved["text_source"]) == (True, sing_module.name, "module")

    odd = eight_channel_checkpoint
    webui.refresh_checkpoints()
    open_panel_page(page, page.driver.current_url)
    choose_checkpoint(page, title_of(webui, odd.name))
    wait_panel(page, "txt2img", "on the 8-channel checkpoint", status="No preset")
    open_panel(page, "txt2img")
    page.click(panel_id("txt2img", "save_preset"))
    state = wait_panel(page, "txt2img", "after a refused save", status="cannot enable")
    assert "8-channel latents" in state["status"]
    assert title_of(webui, odd.name) not in webui.get(f"{API}/presets")["presets"]
