"""What the browser tests read and do on the webui page: the SingDiffusion panel, tabs, dropdowns, settings."""

from __future__ import annotations

import time

from webdriver import Browser

PANEL_STATE = """
const tab = arguments[0], pre = '#script_' + tab + '_singdiffusion_';
const q = (s) => gradioApp().querySelector(pre + s);
return {
  open: q('enabled .label-wrap').classList.contains('open'),
  enabled: q('enabled-checkbox input').checked,
  follow: q('follow_preset input').checked,
  module: q('module input').value,
  guidance: parseFloat(q('guidance_scale input[type=number]').value),
  text_source: (q('text_source input:checked') || {}).value,
  status: q('preset_status').innerText.trim(),
};
"""


def panel(tab: str) -> str:
    return f"#script_{tab}_singdiffusion_"


def panel_state(browser: Browser, tab: str = "txt2img") -> dict:
    return browser.run(PANEL_STATE, tab)


def wait_panel(browser: Browser, tab: str, what: str, timeout: float = 30.0, **expected) -> dict:
    """Wait until the panel shows `expected` (keys of panel_state; status: a substring); the state."""
    deadline = time.monotonic() + timeout
    while True:
        state = panel_state(browser, tab)
        if all((value in state[key]) if key == "status" else state[key] == value for key, value in expected.items()):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the {tab} panel shows {state}, expected {expected}")
        time.sleep(0.2)


def open_tab(browser: Browser, name: str) -> None:
    browser.run("Array.from(gradioApp().querySelectorAll('#tabs > .tab-nav button'))"
                ".find(b => b.innerText.trim() === arguments[0]).click()", name)
    time.sleep(0.5)


def open_settings_section(browser: Browser, section: str) -> None:
    open_tab(browser, "Settings")
    browser.run("Array.from(gradioApp().querySelectorAll('#settings .tab-nav button'))"
                ".find(b => b.innerText.trim() === arguments[0]).click()", section)
    time.sleep(0.5)


def dropdown_choices(browser: Browser, css: str) -> list[str]:
    """The options a Gradio dropdown lists when a user opens it (then closed again)."""
    browser.click(f"{css} input")
    choices = browser.wait_for(f"const items = gradioApp().querySelectorAll('{css} ul.options li');"
                               "return items.length ? Array.from(items).map(e => e.dataset.value) : null",
                               what=f"the options of {css}")
    browser.run("document.activeElement.blur()")
    time.sleep(0.3)
    return choices


def choose(browser: Browser, css: str, value: str) -> None:
    """Pick `value` from a Gradio dropdown as a user does: open it, click the option."""
    browser.click(f"{css} input")
    browser.wait_for(f"return gradioApp().querySelectorAll('{css} ul.options li').length > 0",
                     what=f"the options of {css}")
    browser.run(f"return Array.from(gradioApp().querySelectorAll('{css} ul.options li'))"
                ".find(e => e.dataset.value === arguments[0]).setAttribute('data-pick', '1')", value)
    browser.click(f"{css} ul.options li[data-pick='1']")
