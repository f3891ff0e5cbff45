"""What the audio generation entry points return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from codec.io import pad_stack

__all__ = ["AudioGenerationOutput"]


@dataclass
class AudioGenerationOutput:
    """Generated audio and the tokens it was decoded from.

    audio:         FloatTensor[B, N] at ``sample_rate``, zero-padded after each clip's length.
    lengths:       LongTensor[B], valid samples per clip.
    sample_rate:   Hz.
    tokens:        LongTensor[B, T, 2] codec tokens (semantic, acoustic), 0 after each length.
    token_lengths: LongTensor[B], frames per clip.
    """

    audio: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int
    tokens: torch.Tensor
    token_lengths: torch.Tensor

    def unbatch(self) -> list[torch.Tensor]:
        """One FloatTensor[N_b] per clip."""
        return [a[: int(n)] for a, n in zip(self.audio, self.lengths, strict=True)]

    @classmethod
    def concat(cls, parts: Sequence[AudioGenerationOutput]) -> AudioGenerationOutput:
        """The outputs of consecutive batches as one batch (rows zero-padded to the widest part)."""
        if not parts:
            raise ValueError("concat needs at least one AudioGenerationOutput.")
        audio, _ = pad_stack([row for p in parts for row in p.audio])
        tokens, _ = pad_stack([row for p in parts for row in p.tokens])
        return cls(
            audio=audio,
            lengths=torch.cat([p.lengths for p in parts]),
            sample_rate=parts[0].sample_rate,
            tokens=tokens,
            token_lengths=torch.cat([p.token_lengths for p in parts]),
        )
