"""The decoder's HiFi-GAN vocoder, built on ``transformers.SpeechT5HifiGan``.

The official vocoder is the original HiFi-GAN V1 generator (ResBlock1, leaky-ReLU 0.1, final
leaky-ReLU 0.01 and tanh) with weight norm removed; ``SpeechT5HifiGan`` with
``normalize_before=False`` computes the same function. Input: mel ``[B, frames, mel_bins]``;
output: waveform ``[B, samples]`` at 16 kHz, ``prod(upsample_rates)`` samples per frame (plus a
few samples at the edges: 1024 frames give 163872 samples with the official sizes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
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
