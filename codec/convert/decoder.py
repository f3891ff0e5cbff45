"""Convert the official SemantiCodec decoder checkpoint into the library modules' state dicts.

The official ``decoder.ckpt`` is the ``state_dict()`` of the LDM ``LatentDiffusion`` class:

* ``model.diffusion_model.*``      the UNet (OpenAI/LDM naming)   -> diffusers ``AudioLDM2UNet2DConditionModel``
* ``first_stage_model.{encoder,decoder,quant_conv,post_quant_conv}.*`` the mel VAE -> ``diffusers.AutoencoderKL``
* ``first_stage_model.vocoder.*``  HiFi-GAN (weight norm removed) -> ``transformers.SpeechT5HifiGan``
* ``scale_factor``                 latent scale (the latent is divided by it before the VAE decoder)
* ``model_ema.*``, ``logvar``, the DDPM schedule buffers: not used at inference
  (:data:`ALLOWED_UNUSED`; the schedule is recomputed by :mod:`codec.sampling`).

One pure function per submodule and explicit renames; an official key that no rename consumes
raises a ``ValueError`` naming it. Nothing is guessed. The converted tensors are checked against
the model by :func:`codec.convert.state_dict.check_state_dict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from codec.config import SemantiCodecConfig

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
VOCODER_PREFIX = "first_stage_model.vocoder."

# Official keys that inference does not need. Everything else must be converted.
ALLOWED_UNUSED: tuple[str, ...] = (
    r"model_ema\..*",  # EMA shadow copy of the UNet (the official sampler uses model.*)
    r"logvar",  # training-loss weight
    r"betas",
    r"alphas_cumprod",
    r"alphas_cumprod_prev",
    r"sqrt_alphas_cumprod",
    r"sqrt_one_minus_alphas_cumprod",
    r"log_one_minus_alphas_cumprod",
    r"sqrt_recip_alphas_cumprod",
    r"sqrt_recipm1_alphas_cumprod",
    r"posterior_variance",
    r"posterior_log_variance_clipped",
    r"posterior_mean_coef1",
    r"posterior_mean_coef2",
    r"first_stage_model\.loss\..*",  # VAE training discriminator / LPIPS, if a checkpoint has them
)
_ALLOWED_RE = re.compile("|".join(f"(?:{p})" for p in ALLOWED_UNUSED))

StateDict = dict[str, torch.Tensor]


@dataclass
class DecoderStateDicts:
    """Converted weights of the decoder's parts.

    unet / vae / vocoder: state dicts of the diffusers / transformers modules.
    scale_factor: float, the latent scale of the checkpoint.
    """

    unet: StateDict
    vae: StateDict
    vocoder: StateDict
    scale_factor: float


# ----- UNet -----------------------------------------------------------------------------------
_RESNET_RENAMES = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}


def _rename_resnet(rest: str) -> str:
    for old, new in _RESNET_RENAMES.items():
        if rest.startswith(old + "."):
            return new + rest[len(old) :]
    raise KeyError(rest)


def _unet_key(key: str, num_levels: int, layers_per_block: int) -> str:
    """diffusers name of one official UNet key (without prefix); KeyError if it has none."""
    fixed = {
        "time_embed.0": "time_embedding.linear_1",
        "time_embed.2": "time_embedding.linear_2",
        "input_blocks.0.0": "conv_in",
        "out.0": "conv_norm_out",
        "out.2": "conv_out",
    }
    for old, new in fixed.items():
        if key.startswith(old + "."):
            return new + key[len(old) :]
    per_level = layers_per_block + 1
    m = re.fullmatch(r"input_blocks\.(\d+)\.(\d+)\.(.+)", key)
    if m:
        idx, sub, rest = int(m[1]) - 1, int(m[2]), m[3]
        level, j = divmod(idx, per_level)
        if level >= num_levels:
            raise KeyError(key)
        if j == layers_per_block:  # downsampler
            if sub != 0 or not rest.startswith("op."):
                raise KeyError(key)
            return f"down_blocks.{level}.downsamplers.0.conv.{rest[3:]}"
        if sub == 0:
            return f"down_blocks.{level}.resnets.{j}.{_rename_resnet(rest)}"
        return f"down_blocks.{level}.attentions.{j * 2 + sub - 1}.{rest}"
    m = re.fullmatch(r"middle_block\.(\d+)\.(.+)", key)
    if m:
        sub, rest = int(m[1]), m[2]
        if sub in (0, 3):
            return f"mid_block.resnets.{sub // 3}.{_rename_resnet(rest)}"
        return f"mid_block.attentions.{sub - 1}.{rest}"
    m = re.fullmatch(r"output_blocks\.(\d+)\.(\d+)\.(.+)", key)
    if m:
        idx, sub, rest = int(m[1]), int(m[2]), m[3]
        level, j = divmod(idx, per_level)
        if level >= num_levels:
            raise KeyError(key)
        if sub == 0:
            return f"up_blocks.{level}.resnets.{j}.{_rename_resnet(rest)}"
        if rest.startswith("conv."):  # upsampler: the last entry of the level's last layer
            return f"up_blocks.{level}.upsamplers.0.{rest}"
        return f"up_blocks.{level}.attentions.{j * 2 + sub - 1}.{rest}"
    raise KeyError(key)


def convert_unet(official: Mapping[str, torch.Tensor], num_levels: int, layers_per_block: int) -> StateDict:
    """diffusers UNet state dict from the ``model.diffusion_model.*`` keys of ``official``.

    Raises ValueError naming the official keys that have no diffusers counterpart.
    """
    out: StateDict = {}
    unknown = []
    for key, value in official.items():
        if not key.startswith(UNET_PREFIX):
            continue
        try:
            out[_unet_key(key[len(UNET_PREFIX) :], num_levels, layers_per_block)] = value
        except KeyError:
            unknown.append(key)
    if unknown:
        raise ValueError(f"official UNet keys with no diffusers counterpart: {sorted(unknown)[:20]}")
    return out


# ----- VAE ------------------------------------------------------------------------------------
def _vae_resnet(rest: str) -> str:
    return rest.replace("nin_shortcut.", "conv_shortcut.")


def _vae_attention(rest: str) -> str:
    for old, new in (("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."),
                     ("proj_out.", "to_out.0.")):
        if rest.startswith(old):
            return new + rest[len(old) :]
    raise KeyError(rest)


def _vae_key(key: str, num_levels: int) -> str:
    for side in ("encoder", "decoder"):
        if not key.startswith(side + "."):
            continue
        rest = key[len(side) + 1 :]
        for name in ("conv_in.", "conv_out."):
            if rest.startswith(name):
                return f"{side}.{rest}"
        if rest.startswith("norm_out."):
            return f"{side}.conv_norm_out.{rest[len('norm_out.'):]}"
        m = re.fullmatch(r"mid\.block_(\d)\.(.+)", rest)
        if m:
            return f"{side}.mid_block.resnets.{int(m[1]) - 1}.{_vae_resnet(m[2])}"
        m = re.fullmatch(r"mid\.attn_1\.(.+)", rest)
        if m:
            return f"{side}.mid_block.attentions.0.{_vae_attention(m[1])}"
        m = re.fullmatch(r"(down|up)\.(\d+)\.block\.(\d+)\.(.+)", rest)
        if m:
            # The official decoder numbers its levels from the lowest resolution (up.{n-1} runs first).
            level = int(m[2]) if m[1] == "down" else num_levels - 1 - int(m[2])
            blocks = "down_blocks" if m[1] == "down" else "up_blocks"
            return f"{side}.{blocks}.{level}.resnets.{m[3]}.{_vae_resnet(m[4])}"
        m = re.fullmatch(r"down\.(\d+)\.downsample\.conv\.(.+)", rest)
        if m:
            return f"{side}.down_blocks.{m[1]}.downsamplers.0.conv.{m[2]}"
        m = re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(.+)", rest)
        if m:
            return f"{side}.up_blocks.{num_levels - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}"
        raise KeyError(key)
    if key.startswith(("quant_conv.", "post_quant_conv.")):
        return key
    raise KeyError(key)


def convert_vae(official: Mapping[str, torch.Tensor], num_levels: int) -> StateDict:
    """diffusers AutoencoderKL state dict from the ``first_stage_model.*`` keys (vocoder excluded).

    The mid-block attention's q/k/v/proj_out are 1x1 convolutions officially and linear layers
    in diffusers: their weights lose the two trailing unit axes.
    """
    out: StateDict = {}
    unknown = []
    for key, value in official.items():
        if not key.startswith(VAE_PREFIX) or key.startswith(VOCODER_PREFIX) or _ALLOWED_RE.fullmatch(key):
            continue
        try:
            new = _vae_key(key[len(VAE_PREFIX) :], num_levels)
        except KeyError:
            unknown.append(key)
            continue
        if ".attentions." in new and new.endswith("weight") and value.dim() == 4:
            value = value[:, :, 0, 0]
        out[new] = value
    if unknown:
        raise ValueError(f"official VAE keys with no diffusers counterpart: {sorted(unknown)[:20]}")
    return out


# ----- vocoder --------------------------------------------------------------------------------
def convert_vocoder(official: Mapping[str, torch.Tensor], mel_bins: int) -> StateDict:
    """transformers SpeechT5HifiGan state dict from the ``first_stage_model.vocoder.*`` keys.

    ``ups.i`` becomes ``upsampler.i``; the other names are shared. SpeechT5HifiGan also has
    the buffers ``mean`` / ``scale`` (input normalisation, disabled with ``normalize_before=False``),
    which the official vocoder lacks: they are set to 0 / 1.
    """
    out: StateDict = {}
    for key, value in official.items():
        if not key.startswith(VOCODER_PREFIX):
            continue
        rest = key[len(VOCODER_PREFIX) :]
        if rest.startswith("ups."):
            rest = "upsampler." + rest[len("ups.") :]
        out[rest] = value
    if out:
        dtype = next(iter(out.values())).dtype
        out.setdefault("mean", torch.zeros(mel_bins, dtype=dtype))
        out.setdefault("scale", torch.ones(mel_bins, dtype=dtype))
    return out


# ----- whole checkpoint -----------------------------------------------------------------------
def _consumed(key: str) -> bool:
    return key.startswith((UNET_PREFIX, VAE_PREFIX)) or key == "scale_factor" or bool(_ALLOWED_RE.fullmatch(key))


def convert_decoder(official: Mapping[str, torch.Tensor], config: SemantiCodecConfig) -> DecoderStateDicts:
    """Convert a whole official decoder state dict; raise ValueError on keys nobody consumes.

    ``config`` gives the module sizes (UNet / VAE levels, layers per block, mel bins).
    """
    leftover = sorted(k for k in official if not _consumed(k))
    if leftover:
        raise ValueError(
            f"unexpected keys in the official decoder checkpoint (neither converted nor allowed unused): "
            f"{leftover[:20]}{' ...' if len(leftover) > 20 else ''}"
        )
    if "scale_factor" not in official:
        raise ValueError("the official decoder checkpoint has no 'scale_factor' buffer.")
    return DecoderStateDicts(
        unet=convert_unet(official, len(config.unet_block_channels), config.unet_layers_per_block),
        vae=convert_vae(official, len(config.vae_block_channels)),
        vocoder=convert_vocoder(official, config.vae_mel_bins),
        scale_factor=float(official["scale_factor"]),
    )


def convert_official_decoder(
    official: Mapping[str, torch.Tensor], config: SemantiCodecConfig, prefix: str = "decoder."
) -> StateDict:
    """The official decoder as one flat state dict of :class:`codec.decoder.DiffusionDecoder`
    (keys ``{prefix}unet.*``, ``{prefix}vae.*``, ``{prefix}vocoder.*``, ``{prefix}scale_factor``)."""
    parts = convert_decoder(official, config)
    out: StateDict = {}
    for name, sd in (("unet", parts.unet), ("vae", parts.vae), ("vocoder", parts.vocoder)):
        out.update({f"{prefix}{name}.{k}": v for k, v in sd.items()})
    out[f"{prefix}scale_factor"] = torch.tensor(parts.scale_factor, dtype=torch.float32)
    return out
