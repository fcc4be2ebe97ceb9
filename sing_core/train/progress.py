"""A one-line progress bar on stderr: redrawn in place with a carriage return on a terminal, one line per update in
a log file (so `2> train.log` stays readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressLine:
    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.width = 0

    def update(self, done: int, total: int, detail: str = "", eta_s: float | None = None) -> None:
        """Draw `done` of `total`; the ETA is extrapolated from the time since this bar started unless given."""
        elapsed = time.perf_counter() - self.start
        if eta_s is None:
            eta_s = elapsed / done * (total - done) if done else 0.0
        filled = WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (WIDTH - filled)
        line = (
            f"{self.label} {100 * done // max(total, 1):3d}% [{bar}] {done}/{total}"
            f"{' ' + detail if detail else ''} {clock(elapsed)} elapsed, ETA {clock(eta_s)}"
        )
        if self.live:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.width:
            self.stream.write("\n")
            self.stream.flush()
        self.width = 0
