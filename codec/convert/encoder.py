"""Official SemantiCodec encoder checkpoint -> this package's parameter names.

Pure functions: a rename table, an explicit list of official keys that inference does not
use, and a hard error for anything else (STYLE.md item 7).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch

from codec.config import SemantiCodecConfig
from codec.convert.state_dict import CheckpointMismatchError

# (official prefix, our prefix); first match wins.
ENCODER_RENAMES: tuple[tuple[str, str], ...] = (
    ("audiomae.model.patch_embed.proj.", "audiomae.patch_embed."),
    ("audiomae.model.", "audiomae."),
    ("encoder_output_linear.", "acoustic.proj."),
    ("encoder.", "acoustic.lstm."),
)

# Official keys that exist only for MAE pre-training or VQ training (EMA statistics).
ENCODER_UNUSED = (
    r"audiomae\.model\.mask_token",
    r"audiomae\.model\.decoder_.*",
    r"quantizer\._codebook\.(initted|cluster_size|embed_avg)",
)

ACOUSTIC_CODEBOOK_KEY = "quantizer._codebook.embed"


def _rename(key: str) -> str | None:
    for old, new in ENCODER_RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def convert_official_encoder(
    state_dict: Mapping[str, torch.Tensor],
    semantic_centroids: np.ndarray | torch.Tensor,
    config: SemantiCodecConfig,
) -> dict[str, torch.Tensor]:
    """Return our ``audiomae.*``, ``semantic.*`` and ``acoustic.*`` tensors.

    state_dict: the official ``encoder.ckpt`` (``AudioMAEConditionQuantResEncoder.state_dict()``).
    semantic_centroids: the official ``codebook_*.npy`` table [V, feature_dim].
    """
    unused = re.compile("|".join(f"(?:{p})" for p in ENCODER_UNUSED))
    out: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state_dict.items():
        if key == ACOUSTIC_CODEBOOK_KEY:
            if value.dim() != 3 or value.shape[0] != 1:
                raise CheckpointMismatchError(
                    f"{key} should be [1, codebook_size, dim] (one VQ head), got {tuple(value.shape)}."
                )
            out["acoustic.codebook"] = value[0]
            continue
        if unused.fullmatch(key):
            continue
        new = _rename(key)
        if new is None:
            unexpected.append(key)
        else:
            out[new] = value
    if unexpected:
        raise CheckpointMismatchError(
            f"official encoder checkpoint has {len(unexpected)} keys this converter does not know: "
            f"{unexpected[:20]}. Is it an encoder.ckpt of haoheliu/SemantiCodec?"
        )
    centroids = torch.as_tensor(semantic_centroids)
    if centroids.dim() != 2 or centroids.shape[1] != config.feature_dim:
        raise CheckpointMismatchError(
            f"semantic centroid table must be [V, {config.feature_dim}] for token_rate {config.token_rate}, "
            f"got {tuple(centroids.shape)}."
        )
    out["semantic.centroids"] = centroids.float()
    return out
