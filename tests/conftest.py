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


class FakeTerminal:
    """A text stream that says it is a terminal: progress bars (``plumbing.progress``) draw on it.

    ``with terminal:`` makes it stderr for the block (pytest sets its own stderr before each test
    body, so the switch happens inside the test); ``getvalue()`` is what was drawn.
    """

    def __init__(self):
        import io

        self._buffer = io.StringIO()
        self._saved = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self._buffer.write(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return self._buffer.getvalue()

    def __enter__(self):
        import sys

        self._saved.append(sys.stderr)
        sys.stderr = self
        return self

    def __exit__(self, *exc) -> None:
        import sys

        sys.stderr = self._saved.pop()


@pytest.fixture
def terminal() -> FakeTerminal:
    """A ``FakeTerminal``: ``with terminal:`` runs a block with it as stderr."""
    return FakeTerminal()
