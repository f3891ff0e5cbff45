"""The switch of the codec's fast paths: on by default, ``with fast_paths(False):`` for the plain modules.

The setting belongs to the thread that sets it, as ``torch.no_grad`` does: a block that turns the
fast paths off to bisect a parity drift changes only what this thread computes, not a decode another
thread runs at the same time with the same model. A generation stream decodes in the thread that
reads it (its language model runs in a thread of its own, which the codec's switch does not concern),
so a block around the loop over the stream reaches its decoder. A thread starts with the fast paths on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fast_paths", "fast_paths_enabled"]

_state = threading.local()


def fast_paths_enabled() -> bool:
    """Whether the codec's fast forms run in this thread (True unless a ``fast_paths(False)`` block says otherwise)."""
    return getattr(_state, "enabled", True)


@contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Within the block (in this thread), the codec runs its fast forms if ``enabled`` and its plain
    modules (``nn.LSTM``, diffusers' ``Upsample2D``, ``Conv1d``, ...) if not; the previous setting
    comes back at the end. Also usable as a decorator. Both give the same tokens and the same audio
    up to float rounding; the plain path is the one to bisect a parity drift with."""
    if not isinstance(enabled, bool):
        raise TypeError(f"fast_paths(enabled) takes True or False, got {enabled!r}.")
    previous = fast_paths_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous
