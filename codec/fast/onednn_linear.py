"""Matrix products through oneDNN with the weight packed once, for few-row products on the CPU.

A product of a few rows with a large fp32 weight (an LM decoding step, an LSTM time step) is
bound by reading the weight. torch's CPU ``F.linear`` hands it to the BLAS (MKL), whose sgemm
for 2-16 rows runs far below memory speed on some CPUs: on a 2-core AMD EPYC, 8 rows through a
1536 x 6144 LSTM weight take 10.9 ms there and 4.6 ms through oneDNN with the weight reordered
into its own layout. The two ops used here are internal to torch (its compiler's CPU weight
packing uses them); :func:`onednn_linear_available` checks once that they exist and agree with
``F.linear`` before anything relies on them.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["onednn_linear_available", "pack_weight", "packed_linear", "packed_linear_add"]


@functools.cache
def onednn_linear_available() -> bool:
    """Whether this torch build has oneDNN's packed linear ops and they give ``F.linear``'s
    result on a small case (else callers keep ``F.linear``)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        w, b, x = torch.randn(24, 16, generator=g), torch.randn(24, generator=g), torch.randn(3, 16, generator=g)
        y = packed_linear(x, pack_weight(w), b)
        return bool(torch.allclose(y, torch.nn.functional.linear(x, w, b), rtol=1e-4, atol=1e-5))
    except (AttributeError, RuntimeError, TypeError):
        return False


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """A fp32 CPU weight [out, in] reordered into oneDNN's layout (a new tensor, no gradient)."""
    with torch.no_grad():
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach())


def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ W.T + bias`` for 2-D fp32 ``x`` [rows, in] and ``packed = pack_weight(W)``."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def packed_linear_add(x: torch.Tensor, packed: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``x @ W.T + other`` in one oneDNN call; ``other`` contiguous [rows, out]."""
    return torch.ops.mkldnn._linear_pointwise.binary(x, other, packed, None, "add")
