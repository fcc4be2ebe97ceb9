"""Fixtures every tier may use."""

import pytest
import torch
from skip_summary import skip_summary


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the rest of the requesting test module; the count is restored after it."""
    # Tiny models gain nothing from a second thread, which on a busy machine only waits at every op's barrier.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_terminal_summary(terminalreporter):
    """The skip reasons, collapsed to one line per tier (pyproject's -r leaves out the per-test lines; `-rs` shows
    them)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.section("skipped, per tier (-rs lists every test)", sep="-")
        for line in skip_summary(skipped, terminalreporter.config.rootpath):
            terminalreporter.write_line(line)
