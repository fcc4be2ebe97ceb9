"""Live tier: drives a real webui, AUTOMATIC1111 v1.10.1 given by WEBUI_DIR or Forge given by FORGE_DIR (which one,
and what differs between them: live_hosts.py; see tests/live/README.md).

Tests marked `live` are skipped at collection, with the reason shown, where neither is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

LIVE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = LIVE_DIR.parents[1]
sys.path.insert(0, str(LIVE_DIR))  # the helpers beside this file (no package: the tests dirs have no __init__)

from live_hosts import HOST, SKIP_REASON, BuildError  # noqa: E402
from tiny_sing_module import write_tiny_sing_module  # noqa: E402
from webui_client import DEFAULT_GENERATION, WebuiClient  # noqa: E402
from webui_server import WebuiServer, WebuiStartError  # noqa: E402

EXTENSION_NAME = "sd-webui-singdiffusion"
CHECKPOINT_NAME = "tiny-sd1"
MODULE_NAME = "tiny-sing"
TEXT_MODULE_NAME = "tiny-sing-text"
START_TIMEOUT = float(os.environ.get("WEBUI_START_TIMEOUT", "240" if HOST is None or HOST.key == "a1111" else "600"))


def pytest_report_header(config):
    if HOST is None:
        return f"live tier: skipped ({SKIP_REASON})"
    return f"live tier: {HOST.title} at {HOST.root} ({HOST.dir_var}; LIVE_HOST=a1111|forge chooses when both are set)"


def pytest_collection_modifyitems(config, items):
    if HOST is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("live"):
            item.add_marker(skip)


@dataclass(frozen=True)
class WebuiInstall:
    root: Path  # WEBUI_DIR or FORGE_DIR
    python: Path  # WEBUI_PYTHON or FORGE_PYTHON


@dataclass(frozen=True)
class HostCheckpoint:
    name: str  # the file stem: what /sdapi/v1/sd-models calls model_name and use_checkpoint() takes
    path: Path  # <data-dir>/models/Stable-diffusion/<name>.safetensors (A1111: with <name>.yaml beside it)
    report: dict  # the builder's JSON report: latent_channels, text_width, measured brightness response, …


@dataclass(frozen=True)
class SingModule:
    name: str
    folder: Path  # <data-dir>/models/SingDiffusion/<name>/ with config.json and diffusion_pytorch_model.bin
    report: dict


@dataclass
class LogWatch:
    """The webui console from the moment a test started: `text()` and `wait_for(substring)`."""

    server: WebuiServer
    start: int

    def text(self) -> str:
        return self.server.log_text(since=self.start)

    def wait_for(self, substring: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while substring not in self.text():
            if time.monotonic() > deadline:
                pytest.fail(f"{substring!r} did not appear in the webui console within {timeout} s:\n{self.text()}")
            time.sleep(0.1)
        return self.text()


@pytest.fixture(scope="session")
def webui_install() -> WebuiInstall:
    problems = HOST.problems()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return WebuiInstall(HOST.root, HOST.python)


@pytest.fixture(scope="session")
def live_dir(tmp_path_factory) -> Path:
    """Session folder: data/ is the webui's --data-dir, webui.log its console, *.build.log the builders' output."""
    return tmp_path_factory.mktemp("webui-live")


def page_defaults() -> dict:
    """ui-config.json values giving the page's txt2img and img2img the client's size, steps and sampler
    (webui_client.DEFAULT_GENERATION), so that Generate pressed in a browser (tests/browser) takes seconds rather
    than the minutes 512×512 at 20 steps takes on a CPU; both webuis use these keys (Forge also needs the options of
    HOST.page_default_options)."""
    values = {}
    for tab in ("txt2img", "img2img"):
        sampler = f"customscript/sampler.py/{tab}"  # the sampler's controls are a script's in both webuis
        values |= {f"{tab}/Width/value": DEFAULT_GENERATION["width"],
                   f"{tab}/Height/value": DEFAULT_GENERATION["height"],
                   f"{sampler}/Sampling steps/value": DEFAULT_GENERATION["steps"],
                   f"{sampler}/Sampling method/value": DEFAULT_GENERATION["sampler_name"]}
    return values


@pytest.fixture(scope="session")
def data_dir(live_dir) -> Path:
    """The webui's --data-dir, with the page's defaults of page_defaults() and HOST.page_default_options (the webui
    adds the rest of ui-config.json and config.json at start)."""
    data = live_dir / "data"
    data.mkdir()
    (data / "ui-config.json").write_text(json.dumps(page_defaults(), indent=4))
    if HOST.page_default_options:
        settings = {name: DEFAULT_GENERATION[key] for name, key in HOST.page_default_options}
        (data / "config.json").write_text(json.dumps(settings, indent=4))
    return data


def checkpoint_cache(name: str, options: dict) -> Path | None:
    """With LIVE_CHECKPOINT_CACHE set, the folder a checkpoint is built in once and reused from by later sessions,
    keyed by the host, the builders' source and the build's options (a Forge checkpoint takes minutes here)."""
    root = os.environ.get("LIVE_CHECKPOINT_CACHE")
    if not root:
        return None
    digest = hashlib.sha256(json.dumps([HOST.key, str(HOST.root), name, options]).encode())
    for source in sorted(LIVE_DIR.glob("*_checkpoint.py")):
        digest.update(source.read_bytes())
    folder = Path(root).expanduser() / f"{HOST.key}-{name}-{digest.hexdigest()[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def build_host_checkpoint(webui_install, data_dir, live_dir):
    """Factory: build(name, seed=0, latent_channels=4, text_width=HOST.text_width, family="sd15") -> HostCheckpoint,
    once per name (the host's builder: tiny_host_checkpoint.py or forge_host_checkpoint.py).

    The file lands in the webui's checkpoint folder; a running webui sees it after client.refresh_checkpoints().
    """
    built: dict[str, HostCheckpoint] = {}

    def build(name: str, *, seed: int = 0, latent_channels: int = 4, text_width: int | None = None,
              family: str = "sd15") -> HostCheckpoint:
        if name in built:
            return built[name]
        out_dir = data_dir / "models" / "Stable-diffusion"
        options = {"seed": seed, "latent_channels": latent_channels, "text_width": text_width or HOST.text_width,
                   "family": family}
        cache = checkpoint_cache(name, options)
        build_dir = out_dir if cache is None else cache
        if cache is None or not (cache / "report.json").is_file():
            try:
                report = HOST.build(build_dir, name, live_dir, **options)
            except BuildError as error:
                pytest.fail(str(error), pytrace=False)
            if cache is not None:
                (cache / "report.json").write_text(json.dumps(report))
        if cache is not None:  # hard links: the webui must see the files inside its models folder
            report = json.loads((cache / "report.json").read_text())
            out_dir.mkdir(parents=True, exist_ok=True)
            for item in cache.glob(f"{name}*"):
                target = out_dir / item.name
                if item.is_dir():
                    shutil.copytree(item, target, copy_function=os.link)
                else:
                    os.link(item, target)
        built[name] = HostCheckpoint(name, out_dir / f"{name}.safetensors", report)
        return built[name]

    return build


@pytest.fixture(scope="session")
def host_checkpoint(build_host_checkpoint) -> HostCheckpoint:
    """The tiny SD-1 checkpoint the webui starts with (4 latent channels, text width HOST.text_width: 32 in A1111,
    768 in Forge, which recognises SD-1.5 by it)."""
    return build_host_checkpoint(CHECKPOINT_NAME)


@pytest.fixture(scope="session")
def other_checkpoint(build_host_checkpoint) -> HostCheckpoint:
    """A second SD-1 checkpoint: another seed, and in A1111 another text width (48) too, so that its text encoder
    cannot stand in for the modules' (Forge loads SD-1.5 only with its 768-wide one)."""
    return build_host_checkpoint("tiny-sd1-t48" if HOST.key == "a1111" else "tiny-sd1-other", seed=2,
                                 text_width=48 if HOST.key == "a1111" else None)


@pytest.fixture(scope="session")
def eight_channel_checkpoint(build_host_checkpoint) -> HostCheckpoint:
    """An SD-1 checkpoint whose UNet has 8 latent channels: it loads, but no 4-channel module fits it."""
    return build_host_checkpoint("tiny-sd1-c8", seed=1, latent_channels=8)


@pytest.fixture(scope="session")
def build_sing_module(data_dir):
    """Factory: build(name, seed=0, mean_offset=1.0, cross_attention_dim=HOST.text_width, latent_channels=4)
    -> SingModule."""
    built: dict[str, SingModule] = {}

    def build(name: str, **options) -> SingModule:
        if name not in built:
            folder = data_dir / "models" / "SingDiffusion" / name
            options.setdefault("cross_attention_dim", HOST.text_width)
            built[name] = SingModule(name, folder, write_tiny_sing_module(folder, **options))
        return built[name]

    return build


@pytest.fixture(scope="session")
def sing_module(build_sing_module) -> SingModule:
    """A tiny module matching host_checkpoint (4 channels, its text width) whose x̂0 has latent mean ≈ +1."""
    return build_sing_module(MODULE_NAME)


@pytest.fixture(scope="session")
def text_sing_module(build_sing_module) -> SingModule:
    """Like sing_module, but its x̂0 depends strongly on the text: for telling one image's prompt from another's."""
    return build_sing_module(TEXT_MODULE_NAME, seed=1, text_gain=30.0)


@pytest.fixture(scope="session")
def extension_link(data_dir) -> Path:
    """<data-dir>/extensions/sd-webui-singdiffusion, a symlink to the checkout under test."""
    link = data_dir / "extensions" / EXTENSION_NAME
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(PROJECT_ROOT, target_is_directory=True)
    return link


@pytest.fixture(scope="session")
def probe_link(data_dir) -> Path:
    """The test-only probe extension (tests/live/probe_extension): records each sampling's first denoiser input."""
    link = data_dir / "extensions" / "singdiffusion-test-probe"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(LIVE_DIR / "probe_extension", target_is_directory=True)
    return link


@contextlib.contextmanager
def running(server: WebuiServer, timeout: float = START_TIMEOUT):
    """The server started for the block and stopped after it; a failed start fails the test with the webui's log."""
    try:
        server.start(timeout)
    except WebuiStartError as error:
        server.stop()
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def webui_server(webui_install, data_dir, extension_link, probe_link, host_checkpoint, sing_module, text_sing_module):
    """A running webui with this checkout linked in as an extension; stopped at the end of the session."""
    server = WebuiServer(
        webui_dir=webui_install.root,
        python=webui_install.python,
        data_dir=data_dir,
        checkpoint=host_checkpoint.path,
        log_path=data_dir.parent / "webui.log",
    )
    with running(server):
        yield server


@pytest.fixture(scope="session")
def own_webui(webui_install, host_checkpoint, live_dir, extension_link):
    """Factory for a webui of a test's own, beside the session's: `with own_webui(name) as server:`.

    Its data folder <live_dir>/<name> holds the tiny checkpoint (linked) and, unless extension=False, this
    checkout as an extension; `prepare(data_folder)` runs before the start (modules to put in place, say)."""

    @contextlib.contextmanager
    def start(name: str, *, extension: bool = True, extra_args: tuple[str, ...] = (), prepare=None):
        data = live_dir / name
        models = data / "models" / "Stable-diffusion"
        models.mkdir(parents=True)
        for file in host_checkpoint.path.parent.glob(f"{host_checkpoint.name}*"):
            (models / file.name).symlink_to(file)
        if extension:
            (data / "extensions").mkdir()
            (data / "extensions" / extension_link.name).symlink_to(extension_link.resolve(), target_is_directory=True)
        if prepare is not None:
            prepare(data)
        server = WebuiServer(webui_dir=webui_install.root, python=webui_install.python, data_dir=data,
                             checkpoint=models / host_checkpoint.path.name, log_path=live_dir / f"{name}.log",
                             extra_args=tuple(extra_args))
        with running(server):
            yield server

    return start


@pytest.fixture
def no_presets(webui, host_checkpoint):
    """No presets saved and the session's checkpoint loaded, before and after the test."""

    def reset():
        for title in webui.get("/singdiffusion/v1/presets")["presets"]:
            webui.request("DELETE", f"/singdiffusion/v1/presets/{urllib.parse.quote(title, safe='')}")
        webui.use_checkpoint(host_checkpoint.name)

    reset()
    yield
    reset()


@pytest.fixture(scope="session")
def webui(webui_server) -> WebuiClient:
    return WebuiClient(webui_server.url)


@pytest.fixture
def webui_log(webui_server) -> LogWatch:
    return LogWatch(webui_server, webui_server.log_size())
