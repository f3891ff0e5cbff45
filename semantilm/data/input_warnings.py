"""Warnings about a tokeniser's input, named by the input (file, tar member, data set row) and about the
audio as it was read.

The codec checks the clips it is given as well, but the tokenisers hand it audio they have read, checked
and (``semantilm tokenize``) resampled already: its own warnings would name a place in a length-sorted
batch (``audio[4]``) and fire on the resampler's small overshoot of full-scale audio, so they are
silenced while it encodes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["input_notes", "warn_about_input", "codec_warnings_silenced"]


def input_notes(wave: torch.Tensor, name: str) -> list[str]:
    """What is probably wrong with the audio of input ``name`` as read (samples beyond [-1, 1])."""
    from codec.audio import clipping_message

    message = clipping_message(wave, name)
    return [message] if message is not None else []


def warn_about_input(notes: list[str]) -> None:
    """Each note as a ``codec.audio.AudioWarning`` (one line on the command line)."""
    from codec.audio import AudioWarning

    for note in notes:
        warnings.warn(note, AudioWarning, stacklevel=3)


@contextmanager
def codec_warnings_silenced() -> Iterator[None]:
    """The codec's ``AudioWarning`` about clips the tokeniser has checked itself, left out."""
    from codec.audio import AudioWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioWarning)
        yield
