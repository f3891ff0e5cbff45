"""The acoustic encoder's LSTM for inference on the CPU, a time step at a time over a batch.

torch's CPU ``nn.LSTM`` (oneDNN's LSTM primitive) is fastest at batch 1 but gains little per row
from batching: its recurrent product of a few rows with the 1536 x 6144 weight of a full-size
layer runs far below the memory speed that bounds it. Here each layer and direction computes
the input products of all time steps as one large matrix product (``F.linear``, near the CPU's
peak), then steps through time with the recurrent product through oneDNN's packed linear op
(:mod:`codec.onednn_linear`), which reads the weight once per step for all rows: at 8 rows of
a full-size r100 layer 4.6 ms per step against about 11 ms inside ``nn.LSTM``. The gates are
those of ``nn.LSTM`` (order i, f, g, o; zero initial state); results differ from it by float
rounding only.

The recurrent weight is packed per layer and direction for the call and freed after it, so no
second copy of the LSTM's weights lives beside the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codec.onednn_linear import pack_weight, packed_linear_add

__all__ = ["lstm_by_steps"]


def _direction(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, bias: torch.Tensor | None,
               reverse: bool) -> torch.Tensor:
    """One direction of one layer: time-major input [T, B, I] -> hidden states [T, B, H]."""
    steps, rows, _ = x.shape
    hidden = w_hh.shape[1]
    inputs = F.linear(x, w_ih, bias)  # [T, B, 4H]; all time steps in one product
    recurrent = pack_weight(w_hh)
    h = x.new_zeros(rows, hidden)
    c = x.new_zeros(rows, hidden)
    out = x.new_empty(steps, rows, hidden)
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        gates = packed_linear_add(h, recurrent, inputs[t])
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.addcmul(f.sigmoid_() * c, i.sigmoid_(), g.tanh_())
        h = o.sigmoid_() * torch.tanh(c)
        out[t] = h
    return out


def lstm_by_steps(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """``lstm(x)[0]`` for a batch-first ``x`` [B, T, I] without gradients (zero initial state).

    For plain stacked LSTMs (uni- or bidirectional, no projections, no dropout at inference)."""
    if lstm.proj_size or not lstm.batch_first:
        raise ValueError("lstm_by_steps takes batch-first LSTMs without projections.")
    layer_input = x.transpose(0, 1).contiguous()  # time-major: each step reads contiguous rows
    for layer in range(lstm.num_layers):
        outputs = []
        for reverse in (False, True) if lstm.bidirectional else (False,):
            suffix = f"_l{layer}" + ("_reverse" if reverse else "")
            w_ih, w_hh = getattr(lstm, "weight_ih" + suffix), getattr(lstm, "weight_hh" + suffix)
            bias = getattr(lstm, "bias_ih" + suffix) + getattr(lstm, "bias_hh" + suffix) if lstm.bias else None
            outputs.append(_direction(layer_input, w_ih, w_hh, bias, reverse))
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input.transpose(0, 1)
