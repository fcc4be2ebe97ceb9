"""Selenium on any Gradio web UI (A1111's gradio 3.41, Forge's gradio 4.40): Debian's headless Chromium, and one
page with lookups by elem_id, waits, tabs, dropdowns and screenshots. Nothing here knows a webui or an extension:
host pages (webui_page.py) and tests build on it.

Nothing is ever downloaded: the browser is Debian's chromium (CHROMIUM, default /usr/bin/chromium) and the driver
Debian's chromium-driver (CHROMEDRIVER, default /usr/bin/chromedriver), both given by path, so Selenium Manager never
runs (selenium skips it when the Service has a path; `chromium()` also makes it fail loudly should it ever run).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = "apt-get install chromium chromium-driver"
# Headless, no sandbox (root in a container), nothing that phones home (a closed network), room for a whole panel.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2400")
POLL = 0.2
# An option of an open gr.Dropdown, in gradio 3.41 and 4.x alike; its aria-label is the name it shows.
OPTION = "li[data-testid='dropdown-option']"

T = TypeVar("T")


def missing() -> str | None:
    """Why a browser test cannot run here (what to install); None when it can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} not found: install Debian's {package} ({INSTALL})"
    return None


def _no_selenium_manager(*args, **kwargs):
    raise AssertionError(f"Selenium Manager was asked for a driver: the browser tier uses {CHROMEDRIVER} only")


@contextlib.contextmanager
def chromium(log_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, driven by chromedriver (its log at log_path); quit after the block."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which(CHROMEDRIVER) or CHROMEDRIVER,
                                      log_output=str(log_path))
    try:
        with mock.patch.object(SeleniumManager, "binary_paths", _no_selenium_manager):
            driver = webdriver.Chrome(options=options, service=service)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def selector(elem_id: str, inner: str = "") -> str:
    """The CSS selector of the element Gradio made for `elem_id` (its id), or of `inner` within it."""
    return f"#{elem_id} {inner}".strip()


def css_string(text: str) -> str:
    """`text` as a quoted CSS string, for attribute selectors on values with quotes or brackets."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GradioPage:
    """One browser tab on a Gradio app. Elements are named by their elem_id (and a CSS selector inside it);
    every lookup and action waits up to `timeout` s for the page. Screenshots go to `screenshot_dir`.

    Gradio 3.41 and 4.x both render the app in the document (no shadow root), which is what these lookups read."""

    def __init__(self, driver: WebDriver, screenshot_dir: Path, timeout: float = 30.0):
        self.driver = driver
        self.screenshot_dir = screenshot_dir
        self.timeout = timeout

    # waiting

    def wait(self, condition: Callable[[WebDriver], T], *, what: str, timeout: float | None = None) -> T:
        """WebDriverWait for `condition` (an expected_conditions callable, or any f(driver)); its truthy value."""
        wait = WebDriverWait(self.driver, self.timeout if timeout is None else timeout, poll_frequency=POLL,
                             ignored_exceptions=(StaleElementReferenceException,))
        return wait.until(condition, message=f"waiting for {what}")

    def wait_js(self, script: str, *args, what: str, timeout: float | None = None) -> Any:
        """Wait until `script` (a function body; `return` a value) returns something truthy in the page; that."""
        return self.wait(lambda driver: driver.execute_script(script, *args), what=what, timeout=timeout)

    def holds(self, condition: Callable[[WebDriver], Any], seconds: float, *, what: str) -> None:
        """Assert that `condition` stays truthy at every poll for `seconds`: for "nothing changes" after an event,
        which no wait can observe arriving."""
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            assert condition(self.driver), f"{what}: no longer true after {elapsed:.1f} s"
            time.sleep(POLL)

    # the page

    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args) -> Any:
        """Run `script` as a function body in the page (`return` a value); elements come back as WebElements."""
        return self.driver.execute_script(script, *args)

    def find(self, elem_id: str, inner: str = "") -> WebElement:
        return self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, selector(elem_id, inner))),
                         what=f"an element {selector(elem_id, inner)!r}")

    def find_all(self, elem_id: str, inner: str = "") -> list[WebElement]:
        """Every element matching (at least one: waits for the first)."""
        return self.wait(EC.presence_of_all_elements_located((By.CSS_SELECTOR, selector(elem_id, inner))),
                         what=f"elements {selector(elem_id, inner)!r}")

    def click(self, elem_id: str, inner: str = "") -> None:
        """A real (trusted) click, as a user's, once the element is visible and enabled."""
        self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, selector(elem_id, inner))),
                  what=f"{selector(elem_id, inner)!r} to be clickable").click()

    def text(self, elem_id: str, inner: str = "") -> str:
        """What the element shows (its rendered text)."""
        return self.find(elem_id, inner).text

    # Gradio's components

    def switch_tab(self, label: str, tabs: str = "tabs") -> None:
        """Click the tab button `label` of the gr.Tabs whose elem_id is `tabs`; wait until it is the selected one."""
        buttons = self.find_all(tabs, "> .tab-nav > button")
        button = next((b for b in buttons if b.text.strip() == label), None)
        assert button is not None, f"#{tabs} has no tab {label!r}: {[b.text.strip() for b in buttons]}"
        button.click()
        # Gradio may draw the buttons anew on a switch: read the selected one afresh
        self.wait(lambda _: any(b.text.strip() == label for b in self.find_all(tabs, "> .tab-nav > button.selected")),
                  what=f"the tab {label!r} to be selected")

    def dropdown_choices(self, elem_id: str) -> list[str]:
        """The options a gr.Dropdown lists (their shown names) when a user opens it; closed again after."""
        self.click(elem_id, "input")
        self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, selector(elem_id, "ul.options"))),
                  what=f"the options of #{elem_id} to open")
        # every option, those scrolled out of the list's view too; none is an answer as well
        items = self.driver.find_elements(By.CSS_SELECTOR, selector(elem_id, f"ul.options {OPTION}"))
        choices = [item.get_attribute("aria-label") for item in items]
        self.js("document.activeElement.blur()")
        self.wait(EC.invisibility_of_element_located((By.CSS_SELECTOR, selector(elem_id, "ul.options"))),
                  what=f"the options of #{elem_id} to close")
        return choices

    def choose(self, elem_id: str, value: str) -> None:
        """Pick `value` from a gr.Dropdown as a user does: open it, click the option."""
        self.click(elem_id, "input")
        self.click(elem_id, f"ul.options {OPTION}[aria-label={css_string(value)}]")

    def screenshot(self, name: str, elem_id: str | None = None) -> Path:
        """A PNG of the element (or of the whole window) as screenshot_dir/name."""
        path = self.screenshot_dir / name
        if elem_id is None:
            assert self.driver.save_screenshot(str(path)), f"no screenshot of the window into {path}"
        else:
            assert self.find(elem_id).screenshot(str(path)), f"no screenshot of #{elem_id} into {path}"
        return path

