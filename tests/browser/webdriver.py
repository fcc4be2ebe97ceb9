"""A minimal W3C WebDriver client (stdlib only) driving Debian's headless Chromium through chromedriver.

Only what the browser tier needs: open a page, run JavaScript, find and click elements, take screenshots. No
browser is ever downloaded: CHROMIUM (default /usr/bin/chromium) and CHROMEDRIVER (default /usr/bin/chromedriver)
must be installed (apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
# Headless, no sandbox (root in a container), nothing that phones home, a fresh profile per session.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2400")


class WebDriverError(RuntimeError):
    pass


def missing() -> str | None:
    """Why the browser tier cannot run here; None when it can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} not found: install Debian's {package} (apt-get install chromium chromium-driver)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    def __init__(self, log_path: Path):
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="singdiffusion-chromium-")
        self.log = log_path.open("w")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=self.log,
                                       stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_for_driver()
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={self.profile}"]}
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = answer["sessionId"]

    def _wait_for_driver(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._driver_answers():
                return
            time.sleep(0.2)
        raise WebDriverError(f"chromedriver did not answer on port {self.port} within {timeout} s")

    def _driver_answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.base}/status", timeout=2).read()
        except OSError:
            return False
        return True

    def _call(self, method: str, path: str, payload: dict | None = None):
        data = json.dumps(payload if payload is not None else {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise WebDriverError(f"{method} {path}: {error.read().decode(errors='replace')[:2000]}") from None

    def _session(self, method: str, path: str, payload: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", payload)

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def run(self, script: str, *args):
        """Run `script` as a function body in the page (return a value with `return`); elements come back as refs."""
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *args, timeout: float = 30.0, what: str = ""):
        """Poll `script` until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise WebDriverError(f"timed out after {timeout} s waiting for {what or script}")
            time.sleep(0.2)

    def find(self, css: str) -> dict:
        return self._session("POST", "/element", {"using": "css selector", "value": css})

    def click(self, css: str) -> None:
        """A real (trusted) click, as a user's, on the first element matching `css`."""
        element = self.find(css)
        self._session("POST", f"/element/{element[ELEMENT]}/click")

    def type(self, css: str, text: str) -> None:
        element = self.find(css)
        self._session("POST", f"/element/{element[ELEMENT]}/value", {"text": text})

    def screenshot(self, path: Path, css: str | None = None) -> Path:
        where = f"/element/{self.find(css)[ELEMENT]}/screenshot" if css else "/screenshot"
        path.write_bytes(base64.b64decode(self._session("GET", where)))
        return path

    def close(self) -> None:
        with contextlib.suppress(WebDriverError, OSError):  # the browser may be gone already
            self._session("DELETE", "")
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
