"""The decoder's mel VAE, built on ``diffusers.AutoencoderKL``.

The official first stage is the LDM/taming ``AutoencoderKL`` (``ch 128, ch_mult (1, 2, 4)``,
two ResBlocks per level, mid attention, ``z_channels 8`` with a doubled encoder output). The
diffusers class with the arguments below has the same layers in the same order; only key
names differ (see :mod:`codec.convert.decoder`). Input / output: a log-mel image
``[B, 1, frames, mel_bins]``; latent ``[B, 8, frames / 4, mel_bins / 4]``.

The encoder is kept (it is cheap) because decoder training encodes mels to latents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from diffusers import AutoencoderKL

    from codec.config import SemantiCodecConfig


def vae_kwargs(config: SemantiCodecConfig) -> dict[str, Any]:
    """Constructor arguments of the diffusers VAE for ``config``."""
    channels = tuple(config.vae_block_channels)
    down = 2 ** (len(channels) - 1)
    if config.segment_frames // down != config.latent_time or config.vae_mel_bins // down != config.latent_freq:
        raise ValueError(
            f"vae_block_channels={channels} downsample by {down}, which maps a "
            f"{config.segment_frames} x {config.vae_mel_bins} mel to "
            f"{config.segment_frames // down} x {config.vae_mel_bins // down}, but the config's latent is "
            f"{config.latent_time} x {config.latent_freq}."
        )
    return dict(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=config.vae_layers_per_block,
        act_fn="silu",
        latent_channels=config.latent_channels,
        norm_num_groups=config.vae_norm_groups,
        sample_size=config.segment_frames,
        mid_block_add_attention=True,
        # The latent scale lives in the checkpoint ("scale_factor"); the decoder holds it.
        scaling_factor=1.0,
    )


def build_vae(config: SemantiCodecConfig) -> AutoencoderKL:
    """A randomly initialised VAE with the official structure scaled by ``config``."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**vae_kwargs(config))
