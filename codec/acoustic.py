"""Acoustic stream: bidirectional-LSTM residual encoder and its vector quantiser.

No library models this pair exactly (the official uses vector-quantize-pytorch, whose
inference path is only a Euclidean nearest-neighbour lookup in ``embed[0]``), so it is
written on ``torch.nn``.
"""

from __future__ import annotations

import torch
from torch import nn

from codec.config import SemantiCodecConfig
from codec.fast import fast_forms
from codec.semantic import random_codebook


class AcousticEncoder(nn.Module):
    """[stacked feature ; its centroid] [B, P, 2D] -> pre-quantisation vectors [B, P, D].

    Rows at and after a segment's padding cutoff are set to -1 before the LSTM, as the
    official ``mark_out_padding`` does. The LSTM always sees all P frames of a segment (no
    packed sequences), as in the official code.

    Without autograd on the CPU the LSTM runs its fast form (:mod:`codec.fast.lstm`: a time step
    at a time over the batch, or one segment at a time); every row is computed independently
    either way, so only float rounding differs from one ``nn.LSTM`` call.
    """

    def __init__(self, config: SemantiCodecConfig):
        super().__init__()
        d = config.feature_dim
        self.lstm = nn.LSTM(
            input_size=2 * d, hidden_size=2 * d, num_layers=config.lstm_layers, batch_first=True, bidirectional=True
        )
        self.proj = nn.Linear(4 * d, d, bias=False)
        # Random until trained or loaded; small, like the projected LSTM outputs.
        self.register_buffer("codebook", random_codebook(config.acoustic_codebook_size, d, 0.1))

    @property
    def vocab_size(self) -> int:
        return self.codebook.shape[0]

    def forward(self, inputs: torch.Tensor, valid_frames: torch.Tensor) -> torch.Tensor:
        """inputs [B, P, 2D]; valid_frames LongTensor[B] (rows >= it are padding)."""
        keep = torch.arange(inputs.shape[1], device=inputs.device)[None, :] < valid_frames[:, None]
        inputs = torch.where(keep[..., None], inputs, torch.full_like(inputs, -1.0))
        with fast_forms(self):
            return self.proj(self.lstm(inputs.to(self.proj.weight.dtype))[0])

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> LongTensor[...]: nearest codebook row by Euclidean distance (fp32)."""
        flat = x.reshape(-1, x.shape[-1]).float()
        with torch.autocast(device_type=flat.device.type, enabled=False):
            dist = torch.cdist(flat, self.codebook.float())
        return dist.argmin(dim=-1).reshape(x.shape[:-1])

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """LongTensor[...] -> codebook vectors [..., D]."""
        return self.codebook[ids]
