"""A stdlib client of ComfyUI's HTTP API: POST /prompt, GET /history/<id>, /view, /object_info."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

import numpy as np
from webui_client import decode_png


class PromptRefusedError(RuntimeError):
    """POST /prompt answered 400: the prompt failed validation. `.body` is ComfyUI's JSON answer."""

    def __init__(self, body: dict):
        super().__init__(json.dumps(body)[:2000])
        self.body = body


@dataclass
class Run:
    prompt_id: str
    history: dict  # /history/<id>[id]: status, outputs, meta

    @property
    def succeeded(self) -> bool:
        return self.history["status"]["status_str"] == "success"

    @property
    def error(self) -> dict | None:
        """The execution_error message's data (node_type, exception_message, ...), if the prompt failed."""
        for kind, data in self.history["status"].get("messages", []):
            if kind == "execution_error":
                return data
        return None

    @property
    def failure(self) -> str:
        """The error as ComfyUI reported it, for assertion messages."""
        error = self.error or {}
        return f"{error.get('node_type')}: {error.get('exception_message')}\n{''.join(error.get('traceback', []))}"

    def image_refs(self) -> list[dict]:
        return [image for output in self.history["outputs"].values() for image in output.get("images", [])]


class ComfyClient:
    def __init__(self, base_url: str, timeout: float = 600.0):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.client_id = uuid.uuid4().hex

    def request(self, method: str, path: str, payload: dict | None = None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body = response.read()
            kind = response.headers.get("Content-Type", "")
        return json.loads(body) if "json" in kind else body

    def object_info(self, node: str) -> dict:
        return self.request("GET", f"/object_info/{node}")[node]

    def queue(self, graph: dict) -> str:
        try:
            answer = self.request("POST", "/prompt", {"prompt": graph, "client_id": self.client_id})
        except urllib.error.HTTPError as error:
            if error.code == 400:
                raise PromptRefusedError(json.loads(error.read())) from error
            raise
        return answer["prompt_id"]

    def wait(self, prompt_id: str) -> Run:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            history = self.request("GET", f"/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"]["status_str"] in ("success", "error")):
                return Run(prompt_id, entry)
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {self.timeout:.0f} s")

    def run(self, graph: dict) -> Run:
        return self.wait(self.queue(graph))

    def images(self, run: Run) -> list[np.ndarray]:
        out = []
        for ref in run.image_refs():
            query = urllib.parse.urlencode({k: ref[k] for k in ("filename", "subfolder", "type")})
            out.append(decode_png(self.request("GET", f"/view?{query}")))
        return out
