"""Training-time vector quantiser of the acoustic stream: EMA codebook, straight-through, dead codes.

The official model trains its acoustic VQ with vector-quantize-pytorch's Euclidean codebook
(EMA updates, decay 0.9 as its constructor sets, commitment weight 1.0). We re-implement the
training behaviour on ``torch`` around the codebook *buffer* of
:class:`codec.acoustic.AcousticEncoder`, so that inference keeps its plain lookup table:

* quantise: nearest codebook row by Euclidean distance, in fp32 (also under autocast);
* straight-through estimator: the output is exactly the codebook rows in the forward pass
  and the identity for gradients (``q + (x - sg(x))``);
* commitment loss ``mean |x - sg(q)|^2`` over valid (non-padding) frames;
* EMA (in ``train()`` mode only): ``N_k <- d N_k + (1 - d) n_k`` and
  ``m_k <- d m_k + (1 - d) sum_{x -> k} x``; the codebook is ``m_k / N~_k`` with Laplace
  smoothing ``N~_k = (N_k + eps) / (sum N + K eps) * sum N``;
* dead codes: a code not chosen for ``dead_code_patience`` consecutive updates is re-seeded
  with a random current encoder output (its EMA state reset to that one vector).

Under ``torch.distributed`` the per-code counts and sums are all-reduced before the EMA and
the resulting state is broadcast from rank 0 after re-seeding, so every rank keeps the same
codebook (the quantiser makes no device or launcher decisions of its own).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

logger = logging.getLogger(__name__)


@dataclass
class QuantizerOutput:
    """quantized: [B, P, D] fp32 straight-through codebook rows; ids: LongTensor[B, P];
    commitment: scalar loss; usage: fraction of codes chosen in this batch (all ranks);
    perplexity: exp(entropy) of this batch's code histogram; reseeded: dead codes re-seeded by this call."""

    quantized: torch.Tensor
    ids: torch.Tensor
    commitment: torch.Tensor
    usage: float
    perplexity: float
    reseeded: int


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class EMAVectorQuantizer(nn.Module):
    """EMA state of one codebook [K, D]; ``forward(x, codebook, mask)`` quantises and, in
    training mode, updates ``codebook`` in place (see the module docstring).

    Args:
        num_codes, dim: codebook size.
        decay: EMA decay (official 0.9).
        eps: Laplace smoothing constant.
        dead_code_patience: updates without an assignment before a code is re-seeded (0: never).
    """

    def __init__(self, num_codes: int, dim: int, *, decay: float = 0.9, eps: float = 1e-5,
                 dead_code_patience: int = 50) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        if dead_code_patience < 0:
            raise ValueError(f"dead_code_patience must be >= 0, got {dead_code_patience}.")
        self.decay, self.eps, self.dead_code_patience = decay, eps, dead_code_patience
        # Filled from the codebook at the first training update (it may be loaded after construction).
        self.register_buffer("initted", torch.tensor(False))
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_avg", torch.zeros(num_codes, dim))
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))

    def forward(self, x: torch.Tensor, codebook: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        """x [B, P, D] encoder outputs; codebook [K, D] buffer (updated in place when training);
        mask BoolTensor[B, P] of frames that count (None: all)."""
        if x.shape[-1] != codebook.shape[1]:
            raise ValueError(f"x has dim {x.shape[-1]} but the codebook rows have {codebook.shape[1]}.")
        if mask is None:
            mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            with torch.no_grad():
                table = codebook.float()
                flat = xf.detach().reshape(-1, xf.shape[-1])
                dist = flat.pow(2).sum(-1, keepdim=True) + table.pow(2).sum(-1)[None] - 2 * flat @ table.T
                ids = dist.argmin(dim=-1).reshape(x.shape[:-1])
                rows = table[ids]  # a copy: the in-place update below does not change it
            quantized = rows + (xf - xf.detach())
            valid = mask[..., None].to(xf.dtype)
            n_valid = valid.sum().clamp(min=1.0) * xf.shape[-1]
            commitment = ((xf - rows) ** 2 * valid).sum() / n_valid
            counts = torch.bincount(ids[mask], minlength=codebook.shape[0]).float()
            reseeded = 0
            if self.training:
                reseeded = self._update(xf.detach()[mask], ids[mask], counts, codebook)
        total = counts.sum()
        probs = counts / total.clamp(min=1.0)
        entropy = -(probs * probs.clamp(min=1e-12).log()).sum()
        usage = float((counts > 0).float().mean())
        return QuantizerOutput(quantized, ids, commitment, usage, float(entropy.exp()), reseeded)

    @torch.no_grad()
    def _update(self, vectors: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor, codebook: torch.Tensor) -> int:
        """EMA + dead-code step; ``counts`` is all-reduced in place under torch.distributed."""
        if not bool(self.initted):
            self.embed_avg.copy_(codebook.float() * self.cluster_size[:, None])
            self.initted.fill_(True)
        sums = torch.zeros_like(self.embed_avg).index_add_(0, ids, vectors)
        if _distributed():
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.cluster_size.lerp_(counts, 1.0 - self.decay)
        self.embed_avg.lerp_(sums, 1.0 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + codebook.shape[0] * self.eps) * n
        codebook.copy_((self.embed_avg / smoothed[:, None]).to(codebook.dtype))
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        reseeded = 0
        if self.dead_code_patience and vectors.shape[0]:
            dead = (self.unused_steps >= self.dead_code_patience).nonzero().squeeze(-1)
            reseeded = int(dead.numel())
            if reseeded:
                pick = torch.randint(0, vectors.shape[0], (reseeded,), device=vectors.device)
                seeds = vectors[pick]
                codebook[dead] = seeds.to(codebook.dtype)
                self.embed_avg[dead] = seeds
                self.cluster_size[dead] = 1.0
                self.unused_steps[dead] = 0
                logger.debug("re-seeded %d dead acoustic codes", reseeded)
        if _distributed():
            for tensor in (codebook, self.embed_avg, self.cluster_size, self.unused_steps):
                torch.distributed.broadcast(tensor, src=0)
        return reseeded


__all__ = ["EMAVectorQuantizer", "QuantizerOutput"]
