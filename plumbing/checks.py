"""Checks of numeric arguments (batch sizes, steps, seconds, scales, top-k ...): one wording for the
Python API and the command line.

Library functions call :func:`check_int` / :func:`check_float` and raise ``ValueError("batch_size
must be an integer >= 1, got -1.")``; the command line wraps the same checks as ``argparse`` types
(``semantilm.cli.common``), so a bad flag reads ``argument --batch-size: must be an integer >= 1,
got -1`` and exits 2 before any model loads. Only the standard library is used here.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_int", "check_float", "int_requirement", "float_requirement"]


def int_requirement(minimum: int | None = None, maximum: int | None = None) -> str:
    """What an integer argument must be, in words: ``"must be an integer >= 1"``."""
    if minimum is not None and maximum is not None:
        return f"must be an integer between {minimum} and {maximum}"
    if minimum is not None:
        return f"must be an integer >= {minimum}"
    if maximum is not None:
        return f"must be an integer <= {maximum}"
    return "must be an integer"


def float_requirement(minimum: float | None = None, maximum: float | None = None, *, above: bool = False) -> str:
    """What a real argument must be, in words: ``"must be a finite number > 0"`` (``above``: strictly)."""
    words = "must be a finite number"
    if minimum is not None:
        words += f" {'>' if above else '>='} {minimum:g}"
    if maximum is not None:
        words += f"{' and' if minimum is not None else ''} <= {maximum:g}"
    return words


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` when it is a whole number in [minimum, maximum]; else a ``ValueError``
    (``TypeError`` for something that is not a number) naming ``name``, the value and what is allowed."""
    requirement = int_requirement(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} {requirement}, got {value!r} ({type(value).__name__}).")
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(f"{name} {requirement}, got {value!r}.")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} {requirement}, got {value!r}.")
    return number


def check_float(
    value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None, above: bool = False
) -> float:
    """``value`` as a ``float`` when it is finite and in range (``above``: strictly above ``minimum``); else a
    ``ValueError`` (``TypeError`` for something that is not a number) naming ``name``, the value and the range."""
    requirement = float_requirement(minimum, maximum, above=above)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} {requirement}, got {value!r} ({type(value).__name__}).")
    number = float(value)
    too_low = minimum is not None and (number <= minimum if above else number < minimum)
    if not math.isfinite(number) or too_low or (maximum is not None and number > maximum):
        raise ValueError(f"{name} {requirement}, got {value!r}.")
    return number
