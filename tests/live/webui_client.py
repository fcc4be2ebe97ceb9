"""A small client for the webui's HTTP API (stdlib urllib), returning images as uint8 numpy arrays."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Small and fast on the tiny checkpoint; every field can be overridden per call.
DEFAULT_GENERATION = {"prompt": "", "steps": 4, "width": 64, "height": 64, "seed": 1, "sampler_name": "Euler"}


class WebuiApiError(RuntimeError):
    """A non-2xx answer; `status` and `body` (parsed JSON when possible) are kept for assertions."""

    def __init__(self, method: str, path: str, status: int, body):
        super().__init__(f"{method} {path} -> HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Generation:
    images: list[np.ndarray]  # H×W×3 uint8, in the order the API returns them
    png: list[bytes]  # the PNG files as sent, infotext chunk included
    info: dict  # the parsed "info" JSON: seeds, infotexts, extra_generation_params, …
    parameters: dict  # the request as the webui echoes it

    @property
    def image(self) -> np.ndarray:
        return self.images[0]


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def encode_png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def grey_level(image: np.ndarray) -> float:
    """Mean brightness on 0..255, the paper's average-brightness reading."""
    return float(np.asarray(image, dtype=np.float64).mean())


class WebuiClient:
    def __init__(self, base_url: str, timeout: float = 300.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, payload: dict | None = None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = text
            raise WebuiApiError(method, path, error.code, parsed) from None
        return json.loads(body) if body else None

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, payload: dict | None = None):
        return self.request("POST", path, payload or {})

    def generate(self, route: str, payload: dict) -> Generation:
        answer = self.post(f"/sdapi/v1/{route}", {**DEFAULT_GENERATION, **payload})
        png = [base64.b64decode(image) for image in answer["images"]]
        return Generation(
            images=[decode_png(data) for data in png],
            png=png,
            info=json.loads(answer["info"]) if answer.get("info") else {},
            parameters=answer.get("parameters") or {},
        )

    def txt2img(self, **payload) -> Generation:
        return self.generate("txt2img", payload)

    def img2img(self, init_image: np.ndarray, **payload) -> Generation:
        return self.generate("img2img", {"init_images": [encode_png(init_image)], **payload})

    def png_info(self, png: bytes) -> dict:
        """The webui's reading of a PNG's infotext: {"info": str, "items": {...}, "parameters": {...}}."""
        return self.post("/sdapi/v1/png-info", {"image": base64.b64encode(png).decode()})

    def options(self) -> dict:
        """The webui's settings. Forge leaves every extension's out of GET /sdapi/v1/options: SingDiffusion's are
        read from GET /singdiffusion/v1/settings and added, on either webui."""
        options = self.get("/sdapi/v1/options")
        try:
            return {**self.get("/singdiffusion/v1/settings"), **options}
        except WebuiApiError as error:  # a webui without the extension (404)
            if error.status != 404:
                raise
            return options

    def set_options(self, **values) -> None:
        self.post("/sdapi/v1/options", values)

    @contextmanager
    def temporary_options(self, **values):
        """Set options for a block and put the previous values back afterwards."""
        before = self.options()
        self.set_options(**values)
        try:
            yield
        finally:
            self.set_options(**{key: before[key] for key in values if key in before})

    def extensions(self) -> list[dict]:
        """Only extensions that are git checkouts with a remote: the webui leaves the others out of this list."""
        return self.get("/sdapi/v1/extensions")

    def sysinfo(self) -> dict:
        """The webui's system report: "Extensions" lists every enabled one, "Exceptions" the recent errors."""
        return self.get("/internal/sysinfo")

    def script_info(self) -> list[dict]:
        return self.get("/sdapi/v1/script-info")

    def scripts(self) -> dict:
        return self.get("/sdapi/v1/scripts")

    def checkpoints(self) -> list[dict]:
        return self.get("/sdapi/v1/sd-models")

    def refresh_checkpoints(self) -> None:
        self.post("/sdapi/v1/refresh-checkpoints")

    def use_checkpoint(self, name: str) -> None:
        """Load checkpoint `name` (a file stem as listed by checkpoints()['model_name'])."""
        self.set_options(sd_model_checkpoint=name)

    def checkpoint_in_use(self) -> str:
        """The file stem of the checkpoint the settings name (A1111 keeps its title, "name.safetensors [hash]",
        Forge the name it was given)."""
        value = self.options()["sd_model_checkpoint"].split(" [")[0]
        return value.removesuffix(".safetensors").removesuffix(".ckpt")
