"""A one-line progress bar on stderr: count, percentage, elapsed time and ETA, redrawn with a carriage return.

On a terminal the line is redrawn on every update; when stderr is a file or a pipe (CI logs) a line is written at
every 10% instead, so the log stays readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    def __init__(self, total: int, *, label: str = "", stream: TextIO | None = None, width: int = 24,
                 clock: Callable[[], float] = time.monotonic, interactive: bool | None = None):
        self.total, self.label, self.width, self.clock = total, label, width, clock
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.started = clock()
        self.last_decile = -1
        self.line_open = False

    def line(self, done: int, note: str = "") -> str:
        elapsed = self.clock() - self.started
        fraction = done / self.total if self.total else 1.0
        filled = round(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        eta = format_duration(elapsed / done * (self.total - done)) if done else "?"
        text = (f"{self.label}[{bar}] {done}/{self.total} {fraction:4.0%} "
                f"elapsed {format_duration(elapsed)} eta {eta}")
        return f"{text}  {note}" if note else text

    def update(self, done: int, note: str = "") -> None:
        if self.interactive:
            self.stream.write("\r" + self.line(done, note) + "\x1b[K")  # clear what a longer line left behind
            self.line_open = done < self.total
            if not self.line_open:
                self.stream.write("\n")
        else:
            decile = int(10 * done / self.total) if self.total else 10
            if decile > self.last_decile or done == self.total:
                self.last_decile = decile
                self.stream.write(self.line(done, note) + "\n")
        self.stream.flush()

    def interrupt(self, message: str) -> None:
        """Prints a message on its own line, keeping the bar intact below it (for warnings during the run)."""
        if self.line_open:
            self.stream.write("\n")
            self.line_open = False
        self.stream.write(message + "\n")
        self.stream.flush()
