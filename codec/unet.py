"""The decoder's latent-diffusion UNet, built on diffusers' ``AudioLDM2UNet2DConditionModel``.

The official UNet (an OpenAI/LDM ``UNetModel``) has, at every attention level, a
self-attention-only spatial transformer followed by a cross-attention one. The plain
``UNet2DConditionModel`` holds one transformer per level; the AudioLDM2 variant holds a list,
and ``cross_attention_dim=[None, C]`` per block reproduces the official pair exactly
(``None`` = a transformer whose second attention is self-attention too).

fp16/bf16: the official ResBlocks run their GroupNorms in fp32 (``GroupNorm32``);
:func:`upcast_resnet_group_norms` reproduces that on the diffusers modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from diffusers.pipelines.audioldm2.modeling_audioldm2 import AudioLDM2UNet2DConditionModel

    from codec.config import SemantiCodecConfig


def unet_kwargs(config: SemantiCodecConfig) -> dict[str, Any]:
    """Constructor arguments of the diffusers UNet for ``config`` (the saved diffusers config)."""
    channels = tuple(config.unet_block_channels)
    for c in channels:
        if c % config.unet_head_channels:
            raise ValueError(
                f"unet_block_channels={channels} must be multiples of unet_head_channels="
                f"{config.unet_head_channels} (the official UNet uses 32 channels per head)."
            )
    n = len(channels)
    context = config.context_dim
    return dict(
        sample_size=(config.latent_time, config.latent_freq),
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        flip_sin_to_cos=True,  # official timestep embedding is [cos, sin]
        freq_shift=0,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        mid_block_type="UNetMidBlock2DCrossAttn",
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        block_out_channels=channels,
        layers_per_block=config.unet_layers_per_block,
        norm_num_groups=config.unet_norm_groups,
        norm_eps=1e-5,
        cross_attention_dim=[[None, context]] * n,
        transformer_layers_per_block=1,
        # diffusers' "attention_head_dim" counts heads (see the class docstring in diffusers).
        attention_head_dim=tuple(c // config.unet_head_channels for c in channels),
    )


def build_unet(config: SemantiCodecConfig) -> AudioLDM2UNet2DConditionModel:
    """A randomly initialised UNet with the official structure scaled by ``config``."""
    from diffusers.pipelines.audioldm2.modeling_audioldm2 import AudioLDM2UNet2DConditionModel

    return AudioLDM2UNet2DConditionModel(**unet_kwargs(config))


class _FP32GroupNorm(nn.GroupNorm):
    """GroupNorm computed in fp32 and cast back (the official ``GroupNorm32``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.group_norm(
            x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps
        ).to(x.dtype)


def upcast_resnet_group_norms(unet: nn.Module) -> nn.Module:
    """Make the ResnetBlock2D and output GroupNorms of ``unet`` compute in fp32 (in place).

    These are the norms the official code builds with ``normalization()`` (``GroupNorm32``);
    the transformers' GroupNorms are plain in the official code too and stay as they are.

    Only matters for half-precision inference; in fp32 it is an exact no-op. Parameters keep
    their dtype and names, so state dicts are unchanged.
    """
    from diffusers.models.resnet import ResnetBlock2D

    norms = [getattr(unet, "conv_norm_out", None)]
    for module in unet.modules():
        if isinstance(module, ResnetBlock2D):
            norms += [module.norm1, module.norm2]
    for norm in norms:
        if type(norm) is nn.GroupNorm:
            norm.__class__ = _FP32GroupNorm
    return unet
