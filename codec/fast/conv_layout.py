"""Fast forms that change the memory layout of convolutions on the CPU (channels last).

1-D convolutions: oneDNN computes a 1-D convolution over ``[N, C, L]`` activations in a plain
layout at 35-90 GFLOP/s for the vocoder's shapes on a 2-core AVX2 CPU (worst with few channels
and long sequences: 32 channels over 163872 samples), and the same products as a 2-D convolution
over ``[N, C, 1, L]`` in channels-last layout at 110-150 GFLOP/s; transposed convolutions gain
1.1-6x and give the same bits. :func:`conv1d_as_channels_last_2d` gives a ``Conv1d`` /
``ConvTranspose1d`` that route. Its outputs are ``[N, C, L]`` views whose channels are the fastest
axis, so the elementwise layers between convolutions keep that layout and only the first input
is reordered. The 2-D weights are copies made when the form is built.

The VAE's decoder: oneDNN's 2-D convolutions run ~20 % faster on channels-last activations (a
full-size window: 6.2 s against 7.8 s on a 2-core AVX2 CPU). :func:`channels_last_vae_decoding`
reorders the latents where the VAE's decoding starts; every layer after it keeps the layout, the
weights stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelsLast2dConv", "channels_last_vae_decoding", "conv1d_as_channels_last_2d"]


@dataclass(frozen=True)
class ChannelsLast2dConv:
    """A ``Conv1d`` / ``ConvTranspose1d`` as a 2-D convolution over ``[N, C, 1, L]`` channels-last activations
    (weights copied when it is made)."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: list[int]
    padding: list[int]
    dilation: list[int]
    groups: int
    output_padding: list[int] | None = None  # transposed convolutions only

    @classmethod
    def of(cls, layer: nn.Conv1d | nn.ConvTranspose1d) -> ChannelsLast2dConv:
        extra = [0, layer.output_padding[0]] if isinstance(layer, nn.ConvTranspose1d) else None
        return cls(layer.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last),
                   None if layer.bias is None else layer.bias.detach(), [1, layer.stride[0]],
                   [0, layer.padding[0]], [1, layer.dilation[0]], layer.groups, extra)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.output_padding is not None:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                      self.groups, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def conv1d_as_channels_last_2d(layer: nn.Conv1d | nn.ConvTranspose1d) -> Callable[[torch.Tensor], torch.Tensor] | str:
    """The channels-last 2-D forward of ``layer``, or why it has none."""
    if layer.padding_mode != "zeros":
        return f"padding_mode {layer.padding_mode!r}: the 2-D form pads with zeros"
    if isinstance(layer.padding, str):
        return f"padding {layer.padding!r}: the 2-D form takes padding as numbers"
    conv = ChannelsLast2dConv.of(layer)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return conv(x.unsqueeze(2).contiguous(memory_format=torch.channels_last)).squeeze(2)

    return forward


def channels_last_vae_decoding(first: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward of ``first``, the first layer of a VAE's decoding (``post_quant_conv``, or the
    ``decoder`` without it), that reorders 4-D CPU inputs to channels last before it runs."""
    ordinary = type(first).forward.__get__(first)

    def forward(z: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if z.dim() == 4 and z.device.type == "cpu":
            z = z.contiguous(memory_format=torch.channels_last)
        return ordinary(z, *args, **kwargs)

    return forward
