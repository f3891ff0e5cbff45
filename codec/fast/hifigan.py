"""The HiFi-GAN vocoder's forward on channels-last 2-D activations, with its activations and residual
additions done by the convolutions as they write their outputs (CPU, float32).

Two costs of the per-layer form (:func:`codec.fast.conv_layout.conv1d_as_channels_last_2d`) that the
whole-model form removes: its ``[N, C, L]`` outputs are channels-fastest views, on which the
elementwise layers between the convolutions run ~3x slower than on ``[N, C, 1, L]`` channels-last
tensors (a leaky ReLU over 8 x 32 x 20480 values: 5.6 against 1.7 ms on one thread); and every leaky
ReLU after a convolution and every residual addition is a pass over the activations of its own,
which oneDNN folds into the convolution (post-ops, the same bits). The tiny codec's vocoder on 8
windows, one thread, freed memory kept (:mod:`codec.fast.allocator`): 0.19 -> 0.18 s (median of 6;
the plain modules 0.23 s).

The layers and their order are those of ``SpeechT5HifiGan.forward`` and ``HifiGanResidualBlock``
(transformers); a residual block's first leaky ReLU, whose input every block of an upsampling stage
shares, is computed once per stage. The weights are copies made when the form is built.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from codec.fast.conv_layout import ChannelsLast2dConv
from codec.fast.forward_override import carries_foreign_forward

__all__ = ["hifigan_on_channels_last", "hifigan_refusal"]


def _then_leaky_relu(conv: ChannelsLast2dConv, x: torch.Tensor, slope: float) -> torch.Tensor:
    """``leaky_relu(conv(x), slope)`` in one pass."""
    return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, conv.padding, conv.stride,
                                                   conv.dilation, conv.groups, "leaky_relu", [slope], None)


def _plus(conv: ChannelsLast2dConv, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``conv(x) + other`` in one pass."""
    return torch.ops.mkldnn._convolution_pointwise.binary(x, other, conv.weight, conv.bias, conv.padding,
                                                          conv.stride, conv.dilation, conv.groups, "add", None,
                                                          None, [], None)


def hifigan_refusal(vocoder: nn.Module) -> str | None:
    """Why ``vocoder`` cannot take the whole-model form (its convolutions then take theirs), or None."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
        return "this torch build has no oneDNN convolutions with post-ops"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the post-op convolutions are used on x86-64 CPUs only, this is {platform.machine()}"
    if any(p.dtype != torch.float32 for p in vocoder.parameters()):
        return "its weights are not float32"
    for name, part in vocoder.named_modules():
        if name and carries_foreign_forward(part):
            return f"its part {name} carries a forward of its own"
        if isinstance(part, (nn.Conv1d, nn.ConvTranspose1d)) and (
            part.padding_mode != "zeros" or isinstance(part.padding, str)
        ):
            return f"its part {name} pads other than with a number of zeros"
    return None


def hifigan_on_channels_last(vocoder: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | str:
    """The whole-model fast forward of a transformers ``SpeechT5HifiGan``, or why it has none."""
    reason = hifigan_refusal(vocoder)
    if reason is not None:
        return reason
    config = vocoder.config
    slope = float(config.leaky_relu_slope)
    pre, post = ChannelsLast2dConv.of(vocoder.conv_pre), ChannelsLast2dConv.of(vocoder.conv_post)
    upsamplers = [ChannelsLast2dConv.of(layer) for layer in vocoder.upsampler]
    kernels = vocoder.num_kernels
    blocks = [([ChannelsLast2dConv.of(c) for c in block.convs1], [ChannelsLast2dConv.of(c) for c in block.convs2], float(block.leaky_relu_slope))
              for block in vocoder.resblocks]
    mean, scale = vocoder.mean.detach(), vocoder.scale.detach()

    def residual_block(index: int, x: torch.Tensor, activated: torch.Tensor) -> torch.Tensor:
        convs1, convs2, block_slope = blocks[index]
        for k, (conv1, conv2) in enumerate(zip(convs1, convs2, strict=True)):
            h = activated if k == 0 and block_slope == slope else F.leaky_relu(x, block_slope)
            x = _plus(conv2, _then_leaky_relu(conv1, h, block_slope), x)
        return x

    def forward(spectrogram: torch.Tensor, **kwargs) -> torch.Tensor:
        if config.normalize_before:
            spectrogram = (spectrogram - mean) / scale
        batched = spectrogram.dim() == 3
        if not batched:
            spectrogram = spectrogram.unsqueeze(0)
        x = spectrogram.transpose(2, 1).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = _then_leaky_relu(pre, x, slope) if upsamplers else pre(x)  # the first stage's activation, fused
        for i, upsample in enumerate(upsamplers):
            x = upsample(x if i == 0 else F.leaky_relu(x, slope))
            activated = F.leaky_relu(x, slope)  # every block's first activation of this stage
            total = residual_block(i * kernels, x, activated)
            for j in range(1, kernels):
                total += residual_block(i * kernels + j, x, activated)
            x = total / kernels
        x = torch.tanh(post(F.leaky_relu(x)))
        if not batched:
            return x.squeeze(2).squeeze(0).transpose(1, 0).reshape(-1)
        return x.squeeze(2).squeeze(1)

    return forward
