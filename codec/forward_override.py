"""Giving chosen modules another forward for the length of a ``with`` block.

Used where a computation should run differently only while something runs (cached context
projections during sampling, packed linear layers during LM generation), without changing the
model's classes or its state dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["overridden_forwards"]


@contextmanager
def overridden_forwards(replacements: Iterable[tuple[nn.Module, Callable]]) -> Iterator[int]:
    """Within the block each module runs its paired forward; yields how many were replaced.

    ``replacements`` is consumed inside the block's set-up, so a generator may build each forward
    lazily. A module that already has a forward of its own is left alone. The class's forward comes
    back at the end, also when the block or the set-up fails.
    """
    replaced: list[nn.Module] = []
    try:
        for module, forward in replacements:
            if "forward" not in module.__dict__:
                module.forward = forward
                replaced.append(module)
        yield len(replaced)
    finally:
        for module in replaced:
            del module.forward
