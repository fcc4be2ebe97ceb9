"""Start and stop a real webui (AUTOMATIC1111 or Forge) for the live tier, with its console captured in a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from live_hosts import HOST, LiveHost

# Variables of the test interpreter's environment that would leak into the webui's own interpreter.
ENV_DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


START_ATTEMPTS = 3


class WebuiStartError(RuntimeError):
    pass


class StartAgain(RuntimeError):  # noqa: N818 - a signal to retry, not an error the caller sees
    """The webui failed to start for a reason of the moment (see LiveHost.start_retry_markers)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class WebuiServer:
    """One webui process. `log_path` holds its stdout and stderr together, line-buffered."""

    webui_dir: Path
    python: Path
    data_dir: Path
    checkpoint: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    host: LiveHost | None = HOST  # launch flags, environment, starts worth retrying
    # console lines that must be there before it is ready (the webui's: live_hosts.py)
    ready_markers: tuple[str, ...] = HOST.ready_markers if HOST else ()
    ping_path: str = "/internal/ping"  # answers 200 once the HTTP server is up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.python),
            "launch.py",
            *self.host.launch_flags,
            *self.host.page_flags(),
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--ckpt",
            str(self.checkpoint),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ENV_DROPPED}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
                   **(self.host.environment(self.log_path.parent) if self.host else {}))
        # One OpenMP thread unless told otherwise: on a busy 2-core machine torch's default two threads made a
        # 64×64 4-step txt2img take 1–12 s instead of 0.1–0.3 s (measured side by side, same server setup).
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def start(self, timeout: float) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.launch()
            try:
                self.wait_ready(timeout)
                return
            except StartAgain as again:
                if attempt == START_ATTEMPTS:
                    raise WebuiStartError(self.failure(f"{again} (attempt {attempt} of {START_ATTEMPTS})")) from None
                self.stop()
                self.port = free_port()

    def launch(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # A session of its own, so stop() can end the webui together with any child it spawned.
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.webui_dir,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebuiStartError(self.failure(f"the webui exited with code {self.process.returncode}"))
            log = self.log_text()
            retry = next((marker for marker in self.retry_markers() if marker in log), None)
            if retry is not None:
                raise StartAgain(f"the webui failed to start: {retry!r}")
            if all(marker in log for marker in self.ready_markers) and self.answers():
                return
            time.sleep(0.5)
        raise WebuiStartError(self.failure(f"the webui did not answer within {timeout:.0f} s"))

    def retry_markers(self) -> tuple[str, ...]:
        return self.host.start_retry_markers if self.host else ()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{self.ping_path}", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def failure(self, cause: str) -> str:
        tail = "\n".join(self.log_text().splitlines()[-80:])
        return (
            f"{cause}.\ncommand: {' '.join(self.command())}\ncwd: {self.webui_dir}\n"
            f"--- last lines of {self.log_path} ---\n{tail}"
        )

    def log_text(self, since: int = 0) -> str:
        """The console output from byte offset `since` on (0: all of it)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode("utf-8", errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def stop(self, grace: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid  # start_new_session made the webui the leader of its own process group
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(grace)
