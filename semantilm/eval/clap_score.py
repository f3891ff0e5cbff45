"""CLAP score: the cosine between a clip's CLAP audio embedding and its caption's CLAP text embedding
(as AudioLDM, Tango, Make-An-Audio and audiocraft report it, there often scaled by 100 or clipped at 0;
here the plain cosine in [-1, 1], higher is better)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["cosine_similarity", "clap_scores"]


def cosine_similarity(a: Any, b: Any) -> np.ndarray:
    """Row-wise cosine of two FloatArray[N, D] (a zero row gives 0)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"embeddings must be two [clips, dimensions] arrays of one shape, got {x.shape} and {y.shape}.")
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    return np.where(norms > 0, np.sum(x * y, axis=1) / np.where(norms > 0, norms, 1.0), 0.0)


def clap_scores(audio_embeddings: Any, captions: Sequence[str | None], embed_texts: Any) -> list[float | None]:
    """CLAP score of each clip with its caption (None for a clip without a caption).

    embed_texts: a function from a list of captions to FloatArray[len, D] text embeddings (called once,
    on the distinct captions).
    """
    audio = np.asarray(audio_embeddings, dtype=np.float64)
    if len(audio) != len(captions):
        raise ValueError(f"got {len(audio)} audio embeddings but {len(captions)} captions; pass one per clip.")
    keys = [c.strip() if isinstance(c, str) and c.strip() else None for c in captions]
    distinct = sorted({k for k in keys if k is not None})
    if not distinct:
        return [None] * len(keys)
    texts = dict(zip(distinct, np.asarray(embed_texts(distinct), dtype=np.float64)))
    scored = [i for i, k in enumerate(keys) if k is not None]
    values = cosine_similarity(audio[scored], np.stack([texts[keys[i]] for i in scored]))
    out: list[float | None] = [None] * len(keys)
    for i, value in zip(scored, values):
        out[i] = float(value)
    return out
