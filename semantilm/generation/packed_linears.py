"""Faster LM steps on the CPU: the large linear layers through oneDNN with their weights packed once.

A generation step multiplies a few rows (one token per sequence) by every weight matrix of the
LM. torch's CPU ``F.linear`` hands that to the BLAS (MKL), whose sgemm for few rows can run far
below memory speed: on a 2-core AMD EPYC, 4 rows through the 32768 x 768 output layer of
``base-100m`` take 37 ms there and 10 ms through oneDNN with the weight packed in its own layout.
The base-100m LM then writes 2.2x the tokens/s at batch 4 (``benchmarks/generation.py``).

``packed_linears(model)`` packs the weights of the model's large ``nn.Linear`` layers (fp32, on
the CPU) and routes those layers through oneDNN until the block ends; everything else runs as
before, and gradients, other dtypes and other devices take the ordinary path. Results differ from
``F.linear`` only by float rounding (the oneDNN ops are in :mod:`codec.fast.onednn_linear`).
torch.compile's CPU "freezing" packs weights the same way but compiles for minutes; this costs
one copy of the packed weights while generation runs.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from codec.fast import onednn_linear_available, overridden_forwards, pack_weight, packed_linear

__all__ = ["packed_linears", "MIN_IN_FEATURES", "MIN_WEIGHT_ELEMENTS"]

# Layers smaller than this gain nothing (a tiny LM's layers are bound by per-call overhead, not
# by reading their weights); measured on the LMs of configs/lm (tiny: none packed, base-100m: all).
MIN_IN_FEATURES = 256
MIN_WEIGHT_ELEMENTS = 1 << 16

_DISABLE_ENV = "SEMANTILM_PACKED_LINEARS"  # "0" turns the packing off


def _supported() -> bool:
    return os.environ.get(_DISABLE_ENV, "1") != "0" and onednn_linear_available()


def _wanted(module: nn.Module) -> bool:
    if type(module) is not nn.Linear:  # subclasses may change forward
        return False
    w = module.weight
    return (
        w.device.type == "cpu"
        and w.dtype == torch.float32
        and module.in_features >= MIN_IN_FEATURES
        and w.numel() >= MIN_WEIGHT_ELEMENTS
    )


def _packed_forward(module: nn.Linear, packed: torch.Tensor) -> Any:
    ordinary = nn.Linear.forward.__get__(module)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() == 0:
            return ordinary(x)
        rows = x.numel() // module.in_features
        y = packed_linear(x.reshape(rows, module.in_features), packed, module.bias)
        return y.reshape(*x.shape[:-1], module.out_features)

    return forward


def packed_linears(model: nn.Module) -> AbstractContextManager[int]:
    """Within the block, ``model``'s large fp32 CPU linear layers run through oneDNN with packed
    weights (see the module docstring); yields how many layers were packed (0 where oneDNN is
    missing, the model is elsewhere, or ``SEMANTILM_PACKED_LINEARS=0``). Weights must not change
    inside the block."""
    layers = [(name, m) for name, m in model.named_modules() if _wanted(m)] if _supported() else []
    return overridden_forwards((name, layer, _packed_forward(layer, pack_weight(layer.weight))) for name, layer in layers)
