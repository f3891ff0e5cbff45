"""Load an official ``decoder.ckpt`` state dict into a bare :class:`codec.decoder.DiffusionDecoder`.

The library loads official decoders only as part of a codec (``SemantiCodec.from_official``);
the decoder parity tests and the decode benchmark build the decoder alone, with this helper on
the same converter and checker.
"""

from __future__ import annotations

import torch

from codec.convert.decoder import convert_official_decoder
from codec.convert.state_dict import check_state_dict
from codec.decoder import DiffusionDecoder


def load_official_decoder(decoder: DiffusionDecoder, official: dict[str, torch.Tensor]) -> None:
    """Convert ``official`` and load it into ``decoder`` in place; ValueError (CheckpointMismatchError)
    names any official key nobody converts and any missing, unexpected or mis-shaped key."""
    state = convert_official_decoder(official, decoder.config, prefix="")
    check_state_dict(decoder.state_dict(), state, "official decoder checkpoint")
    decoder.load_state_dict(state, strict=True)
