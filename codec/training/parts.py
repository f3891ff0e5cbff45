"""Take a trained VAE or vocoder from an earlier stage's output into a codec.

The VAE and vocoder stages write whole codecs (``save_pretrained``); the decoder stage needs only
their ``decoder.vae.*`` (plus ``decoder.scale_factor``) or ``decoder.vocoder.*`` weights. Loading
is safetensors-only and strict: every key of the part must be there with the model's shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from codec.checkpoints import CONFIG_NAME, is_native_folder, load_native
from codec.convert.state_dict import check_state_dict
from codec.model import SemantiCodec

__all__ = ["adopt_vocoder", "load_decoder_part", "replace_config", "resolve_codec_folder"]

PARTS = ("vae", "vocoder")
VOCODER_FIELDS = ("vocoder_initial_channels", "vocoder_upsample_rates", "vocoder_upsample_kernels",
                  "vocoder_resblock_kernels", "vocoder_resblock_dilations")


def resolve_codec_folder(source: str | Path) -> Path:
    """A ``save_pretrained`` folder, or a training output dir holding one in ``codec/``."""
    path = Path(source)
    for folder in (path, path / "codec"):
        if is_native_folder(folder):
            return folder
    raise FileNotFoundError(f"{str(path)!r} is neither a save_pretrained codec folder (config.json + "
                            "model.safetensors) nor a training output dir with one in codec/; pass the "
                            "output_dir of a finished vae / vocoder stage.")


def load_decoder_part(codec: SemantiCodec, source: str | Path, part: Literal["vae", "vocoder"]) -> None:
    """Copy ``part`` (``vae``: its weights and the latent ``scale_factor``; ``vocoder``) from the
    codec saved at ``source`` into ``codec`` in place. Raises ValueError naming the keys that are
    missing, unexpected or mis-shaped (different sizes in ``codec.tiny_sizes`` than the stage had)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}.")
    if codec.decoder is None:
        raise ValueError("the codec has no decoder to load a VAE or vocoder into.")
    folder = resolve_codec_folder(source)
    _, state = load_native(folder)
    prefix = f"decoder.{part}."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    module = getattr(codec.decoder, part)
    check_state_dict(module.state_dict(), weights, f"{part} from {str(folder)!r}",
                     hint=f"The {part} sizes of the codec being trained must equal those of the {part} stage "
                          "(codec.tiny_sizes / the codec's config).")
    module.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    if part == "vae":
        if "decoder.scale_factor" not in state:
            raise ValueError(f"{str(folder)!r} has no decoder.scale_factor; it is not a codec with a decoder.")
        with torch.no_grad():
            codec.decoder.scale_factor.copy_(state["decoder.scale_factor"])


def adopt_vocoder(codec: SemantiCodec, source: str | Path) -> None:
    """Put the vocoder of the codec saved at ``source`` into ``codec``, sizes and all.

    The vocoder trains on its own (the decoder stage never runs it), so its stage may use other
    sizes than the stages that wrote ``codec``: the ``vocoder_*`` fields of ``codec.config`` are
    then taken from ``source`` and the vocoder is rebuilt before its weights are loaded."""
    from codec.config import SemantiCodecConfig
    from codec.vocoder import build_vocoder

    if codec.decoder is None:
        raise ValueError("the codec has no decoder to load a vocoder into.")
    theirs = SemantiCodecConfig.from_json_file(resolve_codec_folder(source) / CONFIG_NAME)
    sizes = {name: getattr(theirs, name) for name in VOCODER_FIELDS}
    if any(getattr(codec.config, name) != value for name, value in sizes.items()):
        replace_config(codec, **sizes)
        codec.decoder.vocoder = build_vocoder(codec.config).to(codec.decoder.device)
    load_decoder_part(codec, source, "vocoder")


def replace_config(codec: SemantiCodec, **changes: object) -> None:
    """Give ``codec`` (and its decoder, which holds the same config) a copy of its config with
    ``changes``; the modules are not rebuilt, so only change what they read at run time."""
    import dataclasses

    config = dataclasses.replace(codec.config, **changes)
    codec.config = config
    if codec.decoder is not None:
        codec.decoder.config = config
