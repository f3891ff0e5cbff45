"""Acoustic stream: bidirectional-LSTM residual encoder and its vector quantiser.

No library models this pair exactly (the official uses vector-quantize-pytorch, whose
inference path is only a Euclidean nearest-neighbour lookup in ``embed[0]``), so it is
written on ``torch.nn``.
"""

from __future__ import annotations

import torch
from torch import nn

from codec.config import SemantiCodecConfig
from codec.lstm_steps import lstm_by_steps
from codec.onednn_linear import onednn_linear_available
from codec.semantic import random_codebook

# LSTMs at least this wide step through time themselves on the CPU at batch >= 2 (see
# codec.lstm_steps): their recurrent weights are large enough for the product to be bound by
# reading them. Narrower ones (the tiny codec's) are bound by per-step overhead instead.
MIN_HIDDEN_BY_STEPS = 1024

# Batch sizes that torch's CPU LSTM (oneDNN) runs slower than the same rows one at a time.
# r100 LSTM (4 layers, 1536 units, fp32, 2 threads, torch 2.13, 2-core AMD EPYC), per row:
# batch 1 1.7 s, batch 2 2.5 s, batch 4 1.4 s, batch 8 1.0 s (128 frames); at 512 frames a
# batch of 2 took 1.8x as long as its 2 rows one at a time. Batch 2 is the common case: the
# 2 segments of a 10.24-20.48 s clip. Wide LSTMs step through time instead (MIN_HIDDEN_BY_STEPS),
# so this applies where oneDNN's packed linear ops are missing and to narrow LSTMs. Must not hold 1.
ROW_BY_ROW_BATCHES = frozenset({2})


class AcousticEncoder(nn.Module):
    """[stacked feature ; its centroid] [B, P, 2D] -> pre-quantisation vectors [B, P, D].

    Rows at and after a segment's padding cutoff are set to -1 before the LSTM, as the
    official ``mark_out_padding`` does. The LSTM always sees all P frames of a segment (no
    packed sequences), as in the official code.

    Without autograd on CPU, batches of several segments of a wide fp32 LSTM go through
    :func:`codec.lstm_steps.lstm_by_steps`; otherwise batches whose size is in
    :data:`ROW_BY_ROW_BATCHES` go through the LSTM one segment at a time (see there). Every row
    is computed independently either way, so only float rounding can differ.
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
        return self.proj(self.run_lstm(inputs.to(self.proj.weight.dtype)))

    def run_lstm(self, inputs: torch.Tensor) -> torch.Tensor:
        """[B, P, 2D] -> LSTM outputs [B, P, 4D] (zero initial state, both directions)."""
        if torch.is_grad_enabled() or inputs.device.type != "cpu":
            return self.lstm(inputs)[0]
        if (inputs.shape[0] > 1 and inputs.dtype == torch.float32 and self.lstm.hidden_size >= MIN_HIDDEN_BY_STEPS
                and onednn_linear_available()):
            return lstm_by_steps(self.lstm, inputs)
        if inputs.shape[0] not in ROW_BY_ROW_BATCHES:
            return self.lstm(inputs)[0]
        return torch.cat([self.lstm(row)[0] for row in inputs.split(1)])

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> LongTensor[...]: nearest codebook row by Euclidean distance (fp32)."""
        flat = x.reshape(-1, x.shape[-1]).float()
        with torch.autocast(device_type=flat.device.type, enabled=False):
            dist = torch.cdist(flat, self.codebook.float())
        return dist.argmin(dim=-1).reshape(x.shape[:-1])

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """LongTensor[...] -> codebook vectors [..., D]."""
        return self.codebook[ids]
