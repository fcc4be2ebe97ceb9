"""Browser tier: the live webui (tests/live's fixtures) driven with Selenium in Debian's headless Chromium through
Debian's chromedriver (gradio_page.py; nothing is downloaded).

The webui is the live tier's (tests/live/live_hosts.py: AUTOMATIC1111 for WEBUI_DIR, Forge's gradio 4 UI for
FORGE_DIR). Tests marked `browser` are skipped at collection, with the reason shown, where neither is set or Chromium
or chromedriver is missing. SCREENSHOT_DIR (default: the session folder) receives the screenshots; the README's come
from `SCREENSHOT_DIR=docs`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BROWSER_DIR = Path(__file__).resolve().parent
LIVE_DIR = BROWSER_DIR.parent / "live"
sys.path.insert(0, str(BROWSER_DIR))
sys.path.insert(1, str(LIVE_DIR))  # live_hosts: which webui, and where its page differs

from gradio_page import GradioPage, chromium, missing  # noqa: E402
from webui_page import open_panel_page  # noqa: E402

# The live tier's fixtures (server, client, tiny checkpoints and modules), shared rather than copied.
_spec = importlib.util.spec_from_file_location("singdiffusion_live_conftest", LIVE_DIR / "conftest.py")
live = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = live  # dataclasses look their module up there
_spec.loader.exec_module(live)
for _name in ("webui_install", "live_dir", "data_dir", "build_host_checkpoint", "host_checkpoint", "other_checkpoint",
              "eight_channel_checkpoint", "build_sing_module", "sing_module", "text_sing_module", "extension_link",
              "probe_link", "webui_server", "webui", "webui_log", "own_webui", "no_presets"):
    globals()[_name] = getattr(live, _name)


def pytest_collection_modifyitems(config, items):
    reason = None
    if live.HOST is None:
        reason = live.SKIP_REASON
    elif missing():
        reason = f"the browser tier needs headless Chromium: {missing()}"
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def screenshot_dir(live_dir) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or live_dir / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser(live_dir, screenshot_dir, webui_server) -> GradioPage:
    """One Chromium for the session (its chromedriver log in the session folder)."""
    with chromium(live_dir / "chromedriver.log") as driver:
        yield GradioPage(driver, screenshot_dir)


@pytest.fixture
def page(browser, webui_server) -> GradioPage:
    """The webui freshly loaded, its scripts run, its options known and the panels' first preset load answered."""
    open_panel_page(browser, webui_server.url)
    return browser
