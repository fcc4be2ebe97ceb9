"""The one progress display of the tools (training, encoding, the bench): a tqdm bar on stderr, as the webui uses.

tqdm is imported when a bar is made (requirements/tools.txt installs it), never at import of sing_core. On a
terminal the bar is redrawn in place; into a file or a pipe (CI logs, `2> train.log`) tqdm redraws at most every
`log_interval` seconds so the log stays short. Messages during a run go through `bar.write`, on a line of their
own above the bar.
"""

from __future__ import annotations

import sys
from typing import TextIO

LOG_INTERVAL_S = 10.0


def progress_bar(total: int | None, label: str, *, stream: TextIO | None = None, unit: str = "it", initial: int = 0,
                 log_interval: float = LOG_INTERVAL_S, disable: bool = False):
    """A tqdm bar counting to `total` (None: set later by advance_to) from `initial` (a resumed run); disable=True
    draws nothing (the other processes of a many-process run)."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    return tqdm(total=total, initial=initial, desc=label, unit=unit, file=stream, dynamic_ncols=interactive,
                ncols=None if interactive else 100, mininterval=0.1 if interactive else log_interval, leave=True,
                disable=disable)


def advance_to(bar, done: int, total: int | None = None, detail: str = "") -> None:
    """Moves the bar to `done` of `total` (for callbacks that report counts, not increments)."""
    if total is not None and total != bar.total:
        bar.total = total
    if detail:
        bar.set_postfix_str(detail, refresh=False)
    bar.update(done - bar.n)
