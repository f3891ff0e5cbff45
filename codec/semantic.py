"""Semantic stream: stack AudioMAE patches per token rate, quantise to the nearest centroid."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from codec.config import SemantiCodecConfig

# (time, frequency) neighbours stacked into one frame for each stack factor K.
_STACKING = {1: (1, 1), 2: (1, 2), 4: (2, 2)}


def stack_patches(features: torch.Tensor, config: SemantiCodecConfig) -> torch.Tensor:
    """[B, 1 + T'*F', C] AudioMAE output (cls first) -> [B, P, K*C] token-frame features.

    Frames are time-major with the frequency index fastest; the channels of a frame are
    ordered (time offset, frequency offset, channel), as in the official ``concat_2x2``.
    """
    dt, df = _STACKING[config.stack_factor]
    return rearrange(
        features[:, 1:],
        "b (t dt f df) c -> b (t f) (dt df c)",
        dt=dt,
        df=df,
        f=config.mae_grid_freq // df,
    )


def nearest_code(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``table`` [V, D] for each vector of ``x`` [..., D].

    Squared distances ``|x|^2 + |c|^2 - 2 x.c`` in float32 (also under autocast), as the
    official semantic quantiser computes them; ties go to the lowest index.
    """
    flat = x.reshape(-1, x.shape[-1]).float()
    table = table.float()
    with torch.autocast(device_type=flat.device.type, enabled=False):
        dist = flat.pow(2).sum(-1, keepdim=True) + table.pow(2).sum(-1)[None, :] - 2 * flat @ table.T
    return dist.argmin(dim=-1).reshape(x.shape[:-1])


def random_codebook(rows: int, dim: int, scale: float = 1.0) -> torch.Tensor:
    """A [rows, dim] table of ``scale`` * standard normal draws, left empty on the meta device:
    there it only reserves the shape for loaded weights, and drawing would make torch import its
    tracing stack (seconds at start-up)."""
    table = torch.empty(rows, dim)
    return table if table.is_meta else scale * torch.randn(rows, dim)


class SemanticQuantizer(nn.Module):
    """Holds the k-means centroid table [V, D]; its row count is the semantic vocabulary."""

    def __init__(self, config: SemantiCodecConfig):
        super().__init__()
        # Random until a fitted table is loaded (unit scale, like the LayerNorm'd features).
        self.register_buffer("centroids", random_codebook(config.semantic_codebook_size, config.feature_dim))

    @property
    def vocab_size(self) -> int:
        return self.centroids.shape[0]

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """[..., D] -> LongTensor[...] of centroid ids."""
        return nearest_code(features, self.centroids)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """LongTensor[...] -> centroid vectors [..., D]."""
        return self.centroids[ids]
