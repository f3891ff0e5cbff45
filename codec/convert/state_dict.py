"""Strict comparison of a state dict with the one a model expects.

Every loading path (official converters, ``save_pretrained`` folders, decoder parts taken from
other training stages) checks its tensors here before ``load_state_dict``, so a mismatch is
reported the same way everywhere: the missing, unexpected and mis-shaped keys, by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["CheckpointMismatchError", "check_state_dict"]

_LISTED = 20  # keys named per kind of mismatch


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: lists missing, unexpected and mis-shaped keys."""


def _listing(label: str, keys: Sequence[str]) -> str:
    more = f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else ""
    return f"{label} ({len(keys)}): {list(keys[:_LISTED])}{more}"


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    what: str,
    hint: str = "",
) -> None:
    """Raise CheckpointMismatchError unless ``given`` has exactly the keys and shapes of ``expected``.

    expected: the model's ``state_dict()`` (only keys and shapes are read).
    given: the tensors about to be loaded.
    what: names the checkpoint in the message (``"official encoder checkpoint"``).
    hint: appended to the message (what the caller knows about the likely cause).
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(given)
        if tuple(given[k].shape) != tuple(expected[k].shape)
    )
    parts = [
        _listing(label, keys)
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if keys
    ]
    if parts:
        message = f"{what} does not match the model; " + "; ".join(parts) + "."
        raise CheckpointMismatchError(f"{message} {hint}".rstrip())
