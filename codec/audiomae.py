"""Frozen AudioMAE encoder (ViT-B/16 over a 1024 x 128 fbank image), inference only.

Written on ``torch.nn`` (about 100 lines) rather than taken from timm or transformers:
timm drags in torchvision, and transformers' ViTMAEModel needs its random masking
disabled and its weights renamed anyway. Parameter names follow the official checkpoint
after the ``audiomae.model.`` prefix, so conversion is a plain rename.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from codec.config import SemantiCodecConfig


def sincos_pos_embed(dim: int, grid_time: int, grid_freq: int) -> torch.Tensor:
    """The fixed 2-D sin-cos table of the MAE code [1 + T*F, dim], row 0 (cls) zeros.

    Rows are ordered frequency-major (row 1 + f * T + t), and the first half of the channels
    encodes the time index: this is how the official code builds it (its grid is
    (freq, time)), even though patches are time-major; the table is read from the
    checkpoint when there is one.
    """
    def one_axis(half: int, pos: np.ndarray) -> np.ndarray:
        omega = np.arange(half // 2, dtype=np.float64) / (half / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    time_idx, freq_idx = np.meshgrid(
        np.arange(grid_time, dtype=np.float32), np.arange(grid_freq, dtype=np.float32)
    )  # each [F, T]
    table = np.concatenate([one_axis(dim // 2, time_idx), one_axis(dim // 2, freq_idx)], axis=1)
    table = np.concatenate([np.zeros((1, dim)), table], axis=0)
    return torch.from_numpy(table).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm -> attention, LayerNorm -> MLP)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AudioMAEEncoder(nn.Module):
    """fbank [B, 1024, 128] -> features [B, 1 + 512, mae_dim] (row 0 = cls).

    The features are the mean over ``config.mae_feature_layers`` of the final LayerNorm
    applied to those blocks' outputs (the official "contextual" embedding). Blocks after
    the last feature layer are never run.
    """

    def __init__(self, config: SemantiCodecConfig):
        super().__init__()
        self.config = config
        dim, patch = config.mae_dim, config.mae_patch
        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        n_patches = config.mae_grid_time * config.mae_grid_freq
        table = sincos_pos_embed(dim, config.mae_grid_time, config.mae_grid_freq).unsqueeze(0)
        assert table.shape[1] == n_patches + 1
        self.pos_embed = nn.Parameter(table, requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(dim, config.mae_heads, config.mae_mlp_ratio, config.mae_norm_eps) for _ in range(config.mae_depth)
        )
        self.norm = nn.LayerNorm(dim, eps=config.mae_norm_eps)
        self.requires_grad_(False)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(fbank.unsqueeze(1).to(self.patch_embed.weight.dtype))  # [B, C, T', F']
        x = x.flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]  # time-major patches
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        wanted = set(self.config.mae_feature_layers)
        picked = []
        for i, block in enumerate(self.blocks[: max(wanted) + 1]):
            x = block(x)
            if i in wanted:
                picked.append(self.norm(x))
        return torch.stack(picked).mean(dim=0)
