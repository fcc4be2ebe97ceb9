"""What the browser tests read and do on an A1111-family page (A1111 and Forge share its page scripts: `opts`,
gradioApp(), the Settings tabs, InputAccordion), and on the SingDiffusion panel that sing_webui/ui.py builds there.

Gradio-level lookups, waits, tabs, dropdowns and screenshots are GradioPage's (gradio_page.py).
"""

from __future__ import annotations

from gradio_page import OPTION, GradioPage, css_string
from live_hosts import HOST
from selenium.common.exceptions import TimeoutException

TABS = ("txt2img", "img2img")
# The webui's page scripts have run: the options are known to the page (what its onOptionsChanged handlers read).
OPTIONS_KNOWN = "return typeof opts !== 'undefined' && Object.keys(opts).length > 0"

PANEL_STATE = """
const tab = arguments[0], pre = '#script_' + tab + '_singdiffusion_';
const q = (s) => gradioApp().querySelector(pre + s);
return {
  open: q('enabled .label-wrap').classList.contains('open'),
  enabled: q('enabled-checkbox input').checked,
  follow: q('follow_preset input').checked,
  module: q('module input').value,
  guidance: parseFloat(q('guidance_scale input[type=number]').value),
  strength: parseFloat(q('strength input[type=number]').value),
  text_source: (q('text_source input:checked') || {}).value,
  module_prompt: q('module_prompt textarea').value,
  status: q('preset_status').innerText.trim(),
};
"""


def open_webui(page: GradioPage, url: str, *elem_ids: str, timeout: float = 120.0) -> None:
    """Load the webui at `url` and wait until its options are known and the elements `elem_ids` are on the page."""
    page.open(url)
    page.wait_js(OPTIONS_KNOWN, what="the webui's options in the page", timeout=timeout)
    for elem_id in elem_ids:
        page.find(elem_id)


def switch_to(page: GradioPage, tab: str) -> None:
    """Open the webui's main tab `tab` (txt2img, img2img, settings) by its button, as a user does (its label in this
    webui: live_hosts)."""
    page.switch_tab(HOST.tab_label(tab))


def open_settings_section(page: GradioPage, section: str) -> None:
    switch_to(page, "settings")
    page.switch_tab(section, tabs="settings")


def panel_id(tab: str, name: str = "enabled") -> str:
    """The elem_id of the panel's component `name` in `tab` (the script's elem_id(); "enabled" is the panel)."""
    return f"script_{tab}_singdiffusion_{name}"


def open_panel_page(page: GradioPage, url: str, timeout: float = 120.0) -> None:
    """Load the webui and wait until both tabs' panels are built and have shown their first preset answer (the
    status line, which the page's first onOptionsChanged asks the server for)."""
    open_webui(page, url, *(panel_id(tab, "enabled-visible-checkbox") for tab in TABS), timeout=timeout)
    for tab in TABS:
        page.wait(lambda _, tab=tab: panel_state(page, tab)["status"], what=f"the {tab} panel's first preset status",
                  timeout=timeout)


def panel_state(page: GradioPage, tab: str = "txt2img") -> dict:
    return page.js(PANEL_STATE, tab)


def panel_shows(state: dict, expected: dict) -> bool:
    """Whether `state` has every value of `expected` (status: a substring)."""
    return all((value in state[key]) if key == "status" else state[key] == value for key, value in expected.items())


def wait_panel(page: GradioPage, tab: str, what: str, timeout: float = 30.0, **expected) -> dict:
    """Wait until the panel shows `expected` (keys of panel_state; status: a substring); the state."""
    last: dict = {}

    def shows(_):
        last.update(panel_state(page, tab))
        return panel_shows(last, expected) and dict(last)

    try:
        return page.wait(shows, what=f"the {tab} panel {what}", timeout=timeout)
    except TimeoutException:
        raise AssertionError(f"{what}: the {tab} panel shows {last}, expected {expected}") from None


def open_panel(page: GradioPage, tab: str) -> dict:
    """Open the panel by its header, as a user does (which switches SingDiffusion on); its state once shown."""
    page.click(panel_id(tab), ".label-wrap")
    return wait_panel(page, tab, "after opening it by its header", enabled=True, open=True)


def choose_checkpoint(page: GradioPage, title: str) -> str:
    """Pick the checkpoint the API titles `title` from the page's checkpoint dropdown, as a user does (where it is
    and what it calls the checkpoint: live_hosts); what the dropdown calls it."""
    elem_id, inner = HOST.checkpoint_dropdown
    choice = HOST.checkpoint_choice(title)
    page.click(elem_id, f"{inner} input".strip())
    page.click(elem_id, f"{inner} ul.options {OPTION}[aria-label={css_string(choice)}]".strip())
    return choice
