"""A webui HTTP API client for the benchmarks (stdlib urllib), with bounded retries and errors that say what to do.

Retried, with exponential backoff: no connection (refused, reset, DNS), and 502/503/504 (a proxy or a busy
server). Not retried: any other HTTP status (the request itself was answered), and a POST that timed out (the
webui may still be working on it; sending it again would queue a second generation).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

RETRIED_STATUSES = (502, 503, 504)
# v1.10.1 answers an unknown alwayson_scripts name with "Script 'name' not found" (from its name lookup); the
# "always on script name not found" branch after it is reached by other forks. Both mean the same.
MISSING_SCRIPT = re.compile(r"^(?:Script '(.+)' not found|always on script (.+) not found)$", re.IGNORECASE)
START_HINT = (
    "start the webui with the API enabled: add --api to COMMANDLINE_ARGS (webui-user.sh / webui-user.bat), "
    "e.g. ./webui.sh --api"
)
INSTALL_HINT = (
    "install the sd-webui-singdiffusion extension into the webui's extensions/ folder (Extensions > Install from "
    "URL), make sure it is enabled under Extensions > Installed, and restart the webui"
)


class BenchError(RuntimeError):
    """A failure the user can act on; the message names the server, the cause and the fix."""


class ServerUnreachableError(BenchError):
    pass


class ApiNotEnabledError(BenchError):
    pass


class ExtensionMissingError(BenchError):
    pass


class RequestRejectedError(BenchError):
    """The webui answered 4xx: the detail it sent is in the message and in `.detail`."""

    def __init__(self, message: str, status: int, detail: Any):
        super().__init__(message)
        self.status, self.detail = status, detail


class ServerError(RequestRejectedError):
    """The webui answered 5xx."""


class RequestTimeoutError(BenchError):
    pass


def error_detail(body: bytes) -> Any:
    """The useful part of an error answer: the webui's JSON carries "detail" (and "errors" for exceptions)."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:500]
    if isinstance(parsed, dict):
        detail = parsed.get("detail") or parsed.get("errors") or parsed.get("error")
        return detail if detail not in (None, "") else parsed
    return parsed


def _detail_text(detail: Any) -> str:
    return detail if isinstance(detail, str) else json.dumps(detail)


class WebuiApi:
    """GET/POST JSON against one webui. `attempts` counts tries of retried failures (waits: 1, 2, 4, … × backoff s)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 600.0,
        attempts: int = 4,
        backoff: float = 1.0,
        auth: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise BenchError(f"--url {url!r} must start with http:// or https://, e.g. http://127.0.0.1:7860")
        if attempts < 1:
            raise BenchError(f"retry attempts must be at least 1, got {attempts}")
        self.url = url.rstrip("/")
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.headers = {"Content-Type": "application/json"}
        if auth:
            if ":" not in auth:
                raise BenchError("--api-auth must be USER:PASSWORD, as given to the webui's --api-auth")
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        self.sleep = sleep
        self.warn = warn or (lambda message: None)

    def get(self, path: str, *, missing_ok: bool = False) -> Any:
        """GET path; with missing_ok, a 404 gives None (an optional route) instead of an error."""
        return self._request("GET", path, None, missing_ok=missing_ok)

    def post(self, path: str, payload: dict) -> Any:
        return self._request("POST", path, payload)

    def _request(self, method: str, path: str, payload: dict | None, *, missing_ok: bool = False) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    body = response.read()
            except urllib.error.HTTPError as error:
                detail = error_detail(error.read())
                if error.code in RETRIED_STATUSES and attempt < self.attempts:
                    self._wait(attempt, f"{method} {path} answered HTTP {error.code}")
                    continue
                if error.code == 404 and missing_ok:
                    return None
                raise self._http_error(method, path, error.code, detail) from None
            except TimeoutError as error:
                if method == "POST" or attempt == self.attempts:
                    raise self._timeout(method, path) from error
                self._wait(attempt, f"{method} {path} timed out")
                continue
            except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
                reason = getattr(error, "reason", error)
                if isinstance(reason, TimeoutError):
                    if method == "POST" or attempt == self.attempts:
                        raise self._timeout(method, path) from error
                elif attempt == self.attempts:
                    raise ServerUnreachableError(
                        f"cannot reach the webui at {self.url} ({reason}) after {self.attempts} attempts. "
                        f"Is it running? Check --url, and {START_HINT}"
                    ) from error
                self._wait(attempt, f"{method} {path}: {reason}")
                continue
            try:
                return json.loads(body) if body else None
            except json.JSONDecodeError:
                raise BenchError(
                    f"{method} {self.url}{path} answered with something that is not JSON ({body[:120]!r}); "
                    "is --url the webui's address (not a proxy's or another service's)?"
                ) from None
        raise AssertionError("unreachable: the loop returns or raises")

    def _wait(self, attempt: int, what: str) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        self.warn(f"{what}; retry {attempt}/{self.attempts - 1} in {delay:g} s")
        self.sleep(delay)

    def _timeout(self, method: str, path: str) -> RequestTimeoutError:
        return RequestTimeoutError(
            f"{method} {self.url}{path} got no answer within {self.timeout:g} s (--timeout). A generation at these "
            "settings may need longer: raise --timeout, lower --steps or --batch-size, or look at the webui's console"
        )

    def _http_error(self, method: str, path: str, status: int, detail: Any) -> BenchError:
        text = _detail_text(detail)
        where = f"{method} {self.url}{path}"
        if status == 404 and path.startswith("/sdapi/"):
            return ApiNotEnabledError(f"{where} answered 404: the webui's API is not enabled; {START_HINT}")
        if status == 401:
            return RequestRejectedError(
                f"{where} answered 401: the API asks for credentials; pass --api-auth USER:PASSWORD", status, detail
            )
        missing = MISSING_SCRIPT.search(text) if status == 422 else None
        if missing and (missing.group(1) or missing.group(2)).lower() == "singdiffusion":
            return ExtensionMissingError(f"the webui at {self.url} has no SingDiffusion script ({text}): "
                                         + INSTALL_HINT)
        if status >= 500:
            return ServerError(f"{where} failed on the server, HTTP {status}: {text}. The webui's console has the "
                               "details", status, detail)
        return RequestRejectedError(f"{where} was refused, HTTP {status}: {text}", status, detail)
