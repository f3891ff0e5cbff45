"""The fast form of ``nn.LSTM`` for inference on the CPU: a time step at a time over a batch, or
one row at a time.

torch's CPU ``nn.LSTM`` (oneDNN's LSTM primitive) is fastest at batch 1 but gains little per row
from batching: its recurrent product of a few rows with the 1536 x 6144 weight of a full-size
layer runs far below the memory speed that bounds it. :func:`lstm_by_steps` computes, per layer
and direction, the input products of all time steps as one large matrix product (``F.linear``,
near the CPU's peak), then steps through time with the recurrent product through oneDNN's packed
linear op (:mod:`codec.fast.onednn_linear`), which reads the weight once per step for all rows:
at 8 rows of a full-size r100 layer 4.6 ms per step against about 11 ms inside ``nn.LSTM``.
The gates are those of ``nn.LSTM`` (order i, f, g, o; zero initial state); results differ from it
by float rounding only. The recurrent weight is packed per layer and direction for the call and
freed after it, so no second copy of the LSTM's weights lives beside the model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from codec.fast.onednn_linear import onednn_linear_available, pack_weight, packed_linear_add

__all__ = ["MIN_HIDDEN_BY_STEPS", "ROW_BY_ROW_BATCHES", "fast_lstm_forward", "lstm_by_steps"]

# LSTMs at least this wide step through time themselves on the CPU at batch >= 2: their
# recurrent weights are large enough for the product to be bound by reading them. Narrower ones
# (the tiny codec's) are bound by per-step overhead instead.
MIN_HIDDEN_BY_STEPS = 1024

# Batch sizes that torch's CPU LSTM (oneDNN) runs slower than the same rows one at a time.
# r100 LSTM (4 layers, 1536 units, fp32, 2 threads, torch 2.13, 2-core AMD EPYC), per row:
# batch 1 1.7 s, batch 2 2.5 s, batch 4 1.4 s, batch 8 1.0 s (128 frames); at 512 frames a
# batch of 2 took 1.8x as long as its 2 rows one at a time. Batch 2 is the common case: the
# 2 segments of a 10.24-20.48 s clip. Wide LSTMs step through time instead (MIN_HIDDEN_BY_STEPS),
# so this applies where oneDNN's packed linear ops are missing and to narrow LSTMs. Must not hold 1.
ROW_BY_ROW_BATCHES = frozenset({2})

LSTMResult = tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


def _direction(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, bias: torch.Tensor | None,
               reverse: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One direction of one layer: time-major input [T, B, I] -> (hidden states [T, B, H], last h, last c)."""
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
    return out, h, c


def lstm_by_steps(lstm: nn.LSTM, x: torch.Tensor) -> LSTMResult:
    """``lstm(x)`` for a batch-first ``x`` [B, T, I] without gradients (zero initial state):
    (output [B, T, H * directions], (h_n, c_n) [layers * directions, B, H]).

    For plain stacked LSTMs (uni- or bidirectional, no projections, no dropout at inference)."""
    if lstm.proj_size or not lstm.batch_first:
        raise ValueError("lstm_by_steps takes batch-first LSTMs without projections.")
    layer_input = x.transpose(0, 1).contiguous()  # time-major: each step reads contiguous rows
    last_h, last_c = [], []
    for layer in range(lstm.num_layers):
        outputs = []
        for reverse in (False, True) if lstm.bidirectional else (False,):
            suffix = f"_l{layer}" + ("_reverse" if reverse else "")
            w_ih, w_hh = getattr(lstm, "weight_ih" + suffix), getattr(lstm, "weight_hh" + suffix)
            bias = getattr(lstm, "bias_ih" + suffix) + getattr(lstm, "bias_hh" + suffix) if lstm.bias else None
            out, h, c = _direction(layer_input, w_ih, w_hh, bias, reverse)
            outputs.append(out)
            last_h.append(h)
            last_c.append(c)
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input.transpose(0, 1), (torch.stack(last_h), torch.stack(last_c))


def _row_by_row(ordinary: Callable[[torch.Tensor], LSTMResult], x: torch.Tensor) -> LSTMResult:
    """The LSTM on one row of ``x`` at a time, results joined as one call on the batch gives them."""
    rows = [ordinary(row) for row in x.split(1)]
    return (torch.cat([out for out, _ in rows]),
            (torch.cat([h for _, (h, _) in rows], dim=1), torch.cat([c for _, (_, c) in rows], dim=1)))


def fast_lstm_forward(lstm: nn.LSTM) -> Callable[..., LSTMResult] | str:
    """The fast forward of ``lstm``, or why it has none. Per call it steps through time (a batch of
    several fp32 rows of a wide LSTM, where oneDNN's packed ops work), runs the rows one at a time
    (:data:`ROW_BY_ROW_BATCHES`) or calls ``nn.LSTM``'s forward (autograd on, another device, an
    initial state, packed sequences, dropout in training mode, any other batch)."""
    if not lstm.batch_first or lstm.proj_size:
        return "the fast LSTM takes batch-first LSTMs without projections"
    ordinary = type(lstm).forward.__get__(lstm)

    def forward(x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> LSTMResult:
        if (hx is not None or not isinstance(x, torch.Tensor) or x.dim() != 3 or x.device.type != "cpu"
                or torch.is_grad_enabled() or (lstm.training and lstm.dropout)):
            return ordinary(x, hx)
        if (x.shape[0] > 1 and x.dtype == torch.float32 and lstm.hidden_size >= MIN_HIDDEN_BY_STEPS
                and onednn_linear_available()):
            return lstm_by_steps(lstm, x)
        if x.shape[0] in ROW_BY_ROW_BATCHES:
            return _row_by_row(ordinary, x)
        return ordinary(x)

    return forward
