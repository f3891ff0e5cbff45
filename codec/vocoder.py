"""The decoder's HiFi-GAN vocoder, built on ``transformers.SpeechT5HifiGan``.

The official vocoder is the original HiFi-GAN V1 generator (ResBlock1, leaky-ReLU 0.1, final
leaky-ReLU 0.01 and tanh) with weight norm removed; ``SpeechT5HifiGan`` with
``normalize_before=False`` computes the same function. Input: mel ``[B, frames, mel_bins]``;
output: waveform ``[B, samples]`` at 16 kHz, ``prod(upsample_rates)`` samples per frame (plus a
few samples at the edges: 1024 frames give 163872 samples with the official sizes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from codec.fast import fast_forms

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    from codec.config import SemantiCodecConfig


def vocoder_config(config: SemantiCodecConfig) -> SpeechT5HifiGanConfig:
    """The transformers config of the vocoder for ``config``."""
    from transformers import SpeechT5HifiGanConfig

    if len(config.vocoder_upsample_rates) != len(config.vocoder_upsample_kernels):
        raise ValueError(
            f"vocoder_upsample_rates={config.vocoder_upsample_rates} and vocoder_upsample_kernels="
            f"{config.vocoder_upsample_kernels} must have the same length."
        )
    if config.vocoder_initial_channels % 2 ** len(config.vocoder_upsample_rates):
        raise ValueError(
            f"vocoder_initial_channels={config.vocoder_initial_channels} must be divisible by "
            f"2 ** {len(config.vocoder_upsample_rates)} (it halves at every upsampling layer)."
        )
    return SpeechT5HifiGanConfig(
        model_in_dim=config.vae_mel_bins,
        sampling_rate=config.sample_rate,
        upsample_initial_channel=config.vocoder_initial_channels,
        upsample_rates=list(config.vocoder_upsample_rates),
        upsample_kernel_sizes=list(config.vocoder_upsample_kernels),
        resblock_kernel_sizes=list(config.vocoder_resblock_kernels),
        resblock_dilation_sizes=[list(d) for d in config.vocoder_resblock_dilations],
        leaky_relu_slope=0.1,
        normalize_before=False,
    )


def build_vocoder(config: SemantiCodecConfig) -> SpeechT5HifiGan:
    """A randomly initialised vocoder with the official structure scaled by ``config``.

    Initialised as the HiFi-GAN reference trains it: upsampling and ResBlock convolutions
    N(0, 0.01) (what transformers does for every layer), but the input and output convolutions
    keep PyTorch's default init. With N(0, 0.01) there too the untrained output is ~1e-11 and
    its gradients fall below Adam's epsilon, so a vocoder built here could never train.
    """
    from transformers import SpeechT5HifiGan

    model = SpeechT5HifiGan(vocoder_config(config))
    model.conv_pre.reset_parameters()
    model.conv_post.reset_parameters()
    return model


def vocoder_output_samples(config: SemantiCodecConfig, frames: int) -> int:
    """Waveform samples the vocoder returns for ``frames`` mel frames.

    The input and output convolutions keep the length; each upsampling ``ConvTranspose1d``
    (stride u, kernel k, padding (k - u) // 2) maps L samples to (L - 1) u - 2 padding + k.
    """
    length = frames
    for u, k in zip(config.vocoder_upsample_rates, config.vocoder_upsample_kernels, strict=True):
        length = (length - 1) * u - 2 * ((k - u) // 2) + k
    return length


def vocoder_reach_frames(config: SemantiCodecConfig) -> int:
    """Mel frames after frame ``floor(s / hop)`` that output sample ``s`` can depend on (an upper bound).

    Summed over the layers, each converted to mel frames at its own rate: the 7-tap input
    convolution (3), every upsampling layer (at most ``ceil(k / u) + 1`` input samples) and the
    widest residual block after it (a dilated and an undilated "same" convolution per dilation),
    and the 7-tap output convolution. The vocoder run on a window cut this many frames after
    the last sample one needs gives those samples as the whole window does.
    """
    reach = 3.0
    rate = 1
    block = max(
        sum((k - 1) // 2 * d + (k - 1) // 2 for d in dilations)
        for k, dilations in zip(config.vocoder_resblock_kernels, config.vocoder_resblock_dilations, strict=True)
    )
    for u, k in zip(config.vocoder_upsample_rates, config.vocoder_upsample_kernels, strict=True):
        reach += (-(-k // u) + 1) / rate
        rate *= u
        reach += block / rate
    reach += 3 / rate
    return math.ceil(reach)


def vocoder_frames_needed(config: SemantiCodecConfig, samples: int, frames: int) -> int:
    """Mel frames of a ``frames``-frame window the vocoder needs for its first ``samples`` samples."""
    hop = math.prod(config.vocoder_upsample_rates)
    return min(frames, -(-samples // hop) + vocoder_reach_frames(config) + 1)


def vocode(vocoder: SpeechT5HifiGan, config: SemantiCodecConfig, mel: torch.Tensor,
           samples: Sequence[int] | None = None) -> torch.Tensor:
    """Waveforms [N, L] (fp32) of log-mels [N, frames, mel_bins].

    With ``samples``, row i holds the first ``samples[i]`` samples and zeros after them, and the
    vocoder runs only on the mel frames those samples depend on (:func:`vocoder_frames_needed`):
    a clip's last decoder window is mostly padding whose audio is trimmed away, and the vocoder
    is the costliest stage after the UNet. The vocoder's convolutions take their fast form on the
    CPU (:mod:`codec.fast.conv_layout`).
    """
    with fast_forms(vocoder):
        return _vocode(vocoder, config, mel, samples)


def _vocode(vocoder: SpeechT5HifiGan, config: SemantiCodecConfig, mel: torch.Tensor,
            samples: Sequence[int] | None) -> torch.Tensor:
    dtype = next(vocoder.parameters()).dtype
    if samples is None:
        return vocoder(mel.to(dtype)).float().reshape(mel.shape[0], -1)
    if len(samples) != mel.shape[0]:
        raise ValueError(f"samples has {len(samples)} entries for {mel.shape[0]} windows.")
    frames = mel.shape[1]
    needed = [vocoder_frames_needed(config, int(n), frames) for n in samples]
    out = torch.zeros(mel.shape[0], vocoder_output_samples(config, frames), device=mel.device)
    whole = [i for i, f in enumerate(needed) if f == frames]
    cut = [i for i, f in enumerate(needed) if f < frames]
    for rows, length in ((whole, frames), (cut, max((needed[i] for i in cut), default=0))):
        if not rows:
            continue
        wave = vocoder(mel[rows, :length].to(dtype)).float().reshape(len(rows), -1)
        for j, i in enumerate(rows):
            out[i, : samples[i]] = wave[j, : samples[i]]
    return out
