"""Fixtures shared by the whole test suite."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread, restoring the previous count afterwards.

    Tiny models run fastest on one thread, and on a loaded 2-core machine two threads that wait
    on each other made steps up to 10x slower; the full-size codec tests keep every core.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
