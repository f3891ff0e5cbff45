"""1-D convolutions run as channels-last 2-D convolutions on the CPU.

oneDNN computes a 1-D convolution over ``[N, C, L]`` activations in a plain layout at 35-90
GFLOP/s for the vocoder's shapes on a 2-core AVX2 CPU (worst with few channels and long
sequences: 32 channels over 163872 samples), and the same products as a 2-D convolution over
``[N, C, 1, L]`` in channels-last layout at 110-150 GFLOP/s; transposed convolutions gain 1.1-6x
and give the same bits. Inside :func:`channels_last_conv1d` every ``Conv1d`` / ``ConvTranspose1d``
of a module takes that route. Its outputs are ``[N, C, L]`` views whose channels are the fastest
axis, so the elementwise layers between convolutions keep that layout and only the first input
is reordered.

Only for inference: the 2-D weights are copies made on entry, so gradients would not reach the
module's parameters; with gradients enabled the block changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from codec.forward_override import overridden_forwards

__all__ = ["channels_last_conv1d"]


def _as_2d(layer: nn.Conv1d | nn.ConvTranspose1d) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The channels-last 2-D forward of ``layer``, or None when it cannot take that route."""
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        return None
    weight = layer.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
    bias = None if layer.bias is None else layer.bias.detach()
    stride, padding, dilation = (1, layer.stride[0]), (0, layer.padding[0]), (1, layer.dilation[0])

    if isinstance(layer, nn.ConvTranspose1d):
        output_padding = (0, layer.output_padding[0])

        def transposed(x: torch.Tensor) -> torch.Tensor:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, layer.groups,
                                      dilation).squeeze(2)

        return transposed

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, weight, bias, stride, padding, dilation, layer.groups).squeeze(2)

    return forward


def _replacements(module: nn.Module) -> Iterator[tuple[nn.Module, Callable]]:
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)) and layer.weight.device.type == "cpu":
            forward = _as_2d(layer)
            if forward is not None:
                yield layer, forward


def channels_last_conv1d(module: nn.Module) -> AbstractContextManager[int]:
    """Within the block, ``module``'s CPU 1-D convolutions (zero padding) run as channels-last
    2-D convolutions; yields how many layers do. Nothing changes while gradients are enabled."""
    if torch.is_grad_enabled():
        return nullcontext(0)
    return overridden_forwards(_replacements(module))
