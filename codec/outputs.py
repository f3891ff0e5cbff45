"""Result types of the codec's public API: small dataclasses whose fields state their shapes."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EncodeOutput:
    """Tokens of a batch of clips.

    tokens:  LongTensor[B, T, 2]; ``[..., 0]`` semantic ids, ``[..., 1]`` acoustic ids. Clips
             shorter than the longest are padded with id 0 after their own length.
    lengths: LongTensor[B]; valid token frames of each clip (T_b <= T).
    """

    tokens: torch.Tensor
    lengths: torch.Tensor

    def unbatch(self) -> list[torch.Tensor]:
        """One LongTensor[T_b, 2] per clip, padding removed."""
        return [t[: int(n)] for t, n in zip(self.tokens, self.lengths)]


@dataclass
class DecodeOutput:
    """Waveforms of a batch of token sequences.

    audio:       FloatTensor[B, N] at ``sample_rate``; each clip zero-padded after its length.
    lengths:     LongTensor[B]; valid samples of each clip.
    sample_rate: Hz (16000 for SemantiCodec).
    """

    audio: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int

    def unbatch(self) -> list[torch.Tensor]:
        """One FloatTensor[N_b] per clip, padding removed."""
        return [a[: int(n)] for a, n in zip(self.audio, self.lengths)]
