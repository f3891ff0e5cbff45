"""HiFi-GAN's discriminators (Kong et al., 2020, s.2.2), written here.

No maintained library ships them: ``transformers`` and ``diffusers`` carry HiFi-GAN generators
only (inference), and the training code of the paper lives in research repositories. The layer
shapes follow the paper / official V1 configuration; ``width`` scales every channel count so
that tiny test and toy models stay cheap (``width=1.0`` is the paper's size).

* :class:`PeriodDiscriminator`: a waveform [B, 1, T] is reflect-padded to a multiple of the
  period ``p`` and folded to [B, 1, T/p, p]; five (5, 1) convolutions with stride (3, 1)
  (channels 32, 128, 512, 1024, 1024 at width 1; the last with stride 1), then a (3, 1)
  convolution to one channel. Each column sees samples ``p`` apart: periodic structure.
* :class:`ScaleDiscriminator`: 1-D grouped convolutions (channels 128..1024 at width 1, kernels
  15 / 41 / 5, strides 1 / 2 / 4) on the waveform, on it average-pooled once (x2) or twice (x4).
* :class:`HifiGanDiscriminator`: the multi-period (periods 2, 3, 5, 7, 11) and multi-scale
  (3 scales) discriminators together. ``forward(wave)`` -> list of (score, feature maps), one per
  sub-discriminator; scores are logits of "real", used with the least-squares GAN losses below.

Weight normalisation on every convolution (the paper uses spectral norm on the first scale
discriminator; weight norm there too keeps the state free of power-iteration buffers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = [
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "HifiGanDiscriminator",
    "discriminator_loss",
    "generator_adversarial_loss",
    "feature_matching_loss",
]

DiscriminatorOutput = list[tuple[torch.Tensor, list[torch.Tensor]]]

LEAKY_SLOPE = 0.1


def _channels(base: int, width: float, groups: int = 1) -> int:
    """``base * width`` rounded up to a positive multiple of ``groups``."""
    c = max(1, round(base * width))
    return -(-c // groups) * groups


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU convolutions then the output convolution: (flattened scores, every layer's output)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """Sub-discriminator of the multi-period discriminator for one ``period``."""

    def __init__(self, period: int, width: float = 1.0) -> None:
        super().__init__()
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}.")
        self.period = period
        chans = [1] + [_channels(c, width) for c in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(cin, cout, (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)))
            for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:]))
        )
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wave [B, 1, T] -> (scores [B, n], feature maps)."""
        b, c, t = wave.shape
        if t % self.period:
            wave = F.pad(wave, (0, self.period - t % self.period), mode="reflect")
        return _conv_stack(self.convs, self.post, wave.view(b, c, -1, self.period))


class ScaleDiscriminator(nn.Module):
    """Sub-discriminator of the multi-scale discriminator (one input resolution)."""

    # (base channels, kernel, stride, groups) of the paper's V1 configuration.
    LAYERS = ((128, 15, 1, 1), (128, 41, 2, 4), (256, 41, 2, 16), (512, 41, 4, 16), (1024, 41, 4, 16),
              (1024, 41, 1, 16), (1024, 5, 1, 1))

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        convs, cin = [], 1
        for base, kernel, stride, groups in self.LAYERS:
            g = groups if cin % groups == 0 else 1
            cout = _channels(base, width, g)
            convs.append(weight_norm(nn.Conv1d(cin, cout, kernel, stride, groups=g, padding=(kernel - 1) // 2)))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv1d(cin, 1, 3, padding=1))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wave [B, 1, T] -> (scores [B, n], feature maps)."""
        return _conv_stack(self.convs, self.post, wave)


class HifiGanDiscriminator(nn.Module):
    """Multi-period + multi-scale discriminator; ``forward(wave [B, T])`` -> one output per sub-discriminator."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), scales: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if not periods and scales < 1:
            raise ValueError("the discriminator needs at least one period or one scale.")
        if scales < 0 or width <= 0:
            raise ValueError(f"scales must be >= 0 and width > 0, got scales={scales}, width={width}.")
        self.periods = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)
        self.scales = nn.ModuleList(ScaleDiscriminator(width) for _ in range(scales))

    def forward(self, wave: torch.Tensor) -> DiscriminatorOutput:
        if wave.dim() != 2:
            raise ValueError(f"wave must be [batch, samples], got shape {tuple(wave.shape)}.")
        x = wave.unsqueeze(1)
        outputs = [d(x) for d in self.periods]
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool1d(x, 4, 2, padding=2)
            outputs.append(d(x))
        return outputs


def discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Least-squares GAN: sum over sub-discriminators of mean (1 - D(y))^2 + mean D(G(s))^2."""
    return sum(((1 - r.float()) ** 2).mean() + (f.float() ** 2).mean() for (r, _), (f, _) in zip(real, fake))


def generator_adversarial_loss(fake: DiscriminatorOutput) -> torch.Tensor:
    """Least-squares GAN: sum over sub-discriminators of mean (1 - D(G(s)))^2."""
    return sum(((1 - f.float()) ** 2).mean() for f, _ in fake)


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Sum over sub-discriminators and layers of mean |D_l(y) - D_l(G(s))| (real features are targets)."""
    return sum(F.l1_loss(g.float(), r.detach().float())
               for (_, real_maps), (_, fake_maps) in zip(real, fake) for r, g in zip(real_maps, fake_maps))
