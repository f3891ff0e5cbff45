"""Progress bars of long calls: shown on a terminal, quiet off one (logs, pipes, tests).

Every bar of the package comes from :func:`progress_bar`, so every long call (LM generation,
diffusion decoding, encoding, the command lines) follows the same rule: ``progress=None`` (the
default) shows the bar only when stderr is a terminal, ``True`` always, ``False`` never.
:func:`library_bars` holds ``transformers``' own bars to the same rule.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress_enabled", "progress_bar", "library_bars"]


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether a bar shows: ``progress`` when it is a bool; when None, whether stderr is a terminal."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (only on a terminal), got {progress!r}.")
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty is not None and isatty())
    return progress


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 progress: bool | None = None, leave: bool = False, **options: Any) -> Any:
    """A ``tqdm`` bar on stderr (a widget in notebooks), disabled unless :func:`progress_enabled`.

    It is removed when it closes (``leave=False``), so the bars of inner steps leave nothing behind.
    options: more ``tqdm`` arguments (``position`` for one bar per process, ``dynamic_ncols``).
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not progress_enabled(progress), leave=leave,
                file=sys.stderr, **options)


@contextmanager
def library_bars(progress: bool | None = None) -> Iterator[None]:
    """Inside the block, ``transformers``' own bars (e.g. loading weights) are off where ours
    would be (:func:`progress_enabled` false); they are never turned on here."""
    from transformers.utils import logging as hf_logging

    quiet = hf_logging.is_progress_bar_enabled() and not progress_enabled(progress)
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet:
            hf_logging.enable_progress_bar()
