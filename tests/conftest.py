"""Fixtures every tier may use."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the rest of the requesting test module; the count is restored after it."""
    # Tiny models gain nothing from a second thread, which on a busy machine only waits at every op's barrier.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
