"""Giving chosen modules another forward for the length of a ``with`` block.

Used where a computation should run differently only while something runs (the codec's fast forms,
packed linear layers during LM generation), without changing the model's classes or its state dict.

A module that already carries a forward of its own (accelerate's and diffusers' offloading and
casting hooks set one) keeps it: replacing it would drop the hook, and restoring it afterwards
would race with whoever set it. Such modules are named in a :class:`FastFormSkipped` warning.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["FastFormSkipped", "carries_foreign_forward", "hooked", "overridden_forwards", "runs_override", "warn_skipped"]

_lock = threading.Lock()
_ours: weakref.WeakSet = weakref.WeakSet()  # the forwards installed by a block that is still running


class FastFormSkipped(UserWarning):
    """A module runs its plain forward where a faster form was meant for it."""


def _class_forward(module: nn.Module, forward: object) -> bool:
    """Whether ``forward`` is the class's own forward bound to ``module`` (left behind by a removed hook)."""
    return getattr(forward, "__self__", None) is module and getattr(forward, "__func__", None) is type(module).forward


def runs_override(module: nn.Module) -> bool:
    """Whether ``module`` runs a forward that an ``overridden_forwards`` block still in progress gave it."""
    return module.__dict__.get("forward") in _ours


def carries_foreign_forward(module: nn.Module) -> bool:
    """Whether ``module`` has an instance ``forward`` that is neither an override nor the class's own."""
    forward = module.__dict__.get("forward")
    return forward is not None and forward not in _ours and not _class_forward(module, forward)


def hooked(who: str = "it") -> str:
    """Why a module that carries (or sits inside one that carries) a forward of its own keeps its plain forward."""
    return f"{who} carries a forward of its own, as offloading hooks set"


def warn_skipped(skipped: dict[str, str]) -> None:
    """One :class:`FastFormSkipped` warning naming every module of ``skipped`` (name -> why)."""
    if skipped:
        listed = "; ".join(f"{name} ({why})" for name, why in skipped.items())
        warnings.warn(f"{len(skipped)} module(s) keep their plain forward instead of a faster form: {listed}.",
                      FastFormSkipped, stacklevel=2)


@contextmanager
def overridden_forwards(replacements: Iterable[tuple[str, nn.Module, Callable]]) -> Iterator[int]:
    """Within the block each module runs its paired forward; yields how many were replaced.

    ``replacements`` holds (name, module, forward) and is consumed inside the block's set-up, so a
    generator may build each forward lazily. A module with a forward of its own is left alone and
    named in a warning; one that already runs a forward of another running block is left alone
    quietly. What the module ran before comes back at the end, also when the block or the set-up fails.
    """
    replaced: list[tuple[nn.Module, Callable, object]] = []
    skipped: dict[str, str] = {}
    try:
        for name, module, forward in replacements:
            with _lock:
                previous = module.__dict__.get("forward")
                if previous is None or _class_forward(module, previous):
                    module.forward = forward
                    _ours.add(forward)
                    replaced.append((module, forward, previous))
                elif carries_foreign_forward(module):
                    skipped[name] = hooked()
        warn_skipped(skipped)
        yield len(replaced)
    finally:
        with _lock:
            for module, forward, previous in replaced:
                _ours.discard(forward)
                if module.__dict__.get("forward") is not forward:
                    continue
                if previous is None:
                    del module.forward
                else:
                    module.forward = previous
