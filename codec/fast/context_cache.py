"""Cross-attention keys and values computed once per sampling run instead of at every step.

Every UNet call of a sampling run cross-attends to the same context (the windows' token
embeddings with their positions, conditional and unconditional), so each cross-attention layer's
keys and values are the same at every step. With a 1728-6336 wide context they are ~12 of the
~53 GFLOP of a full-size UNet call. The fast form of a cross-attention's ``to_k`` and ``to_v``
computes its output for the run's context at the first step and hands the same tensor out
afterwards: the same products of the same inputs, so the sampler's output does not change by a bit.

diffusers' attention processors call ``attn.to_k(context)`` and ``attn.to_v(context)``; those two
layers remember their output for ``context`` (the very tensor object, which must not change while
the form is in place). Any other input goes through the ordinary forward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["remembering_projection"]


def remembering_projection(layer: nn.Module, context: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward of ``layer`` that computes its output for ``context`` once and then returns it again."""
    ordinary = type(layer).forward.__get__(layer)
    kept: list[torch.Tensor] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x is not context:
            return ordinary(x)
        if not kept:
            kept.append(ordinary(x))
        return kept[0]

    return forward
