"""KL divergence between an audio tagger's label distributions of generated and reference clips.

The convention of audiocraft's ``metrics/kld.py`` (MusicGen, AudioGen): the tagger's logits of each
clip go through a softmax over all labels (AudioSet taggers are trained multi-label, with sigmoids,
but the softmax makes one distribution per clip), a clip longer than the tagger's input window is the
mean of its windows' distributions, and the divergence is

    KL(p_reference || p_generated) = sum_i p_ref[i] * (log p_ref[i] - log(p_gen[i] + 1e-6))

(audiocraft also reports the reverse direction; this module reports this one, its headline "KLD").

Each generated clip is paired with the reference clips of the same caption (exact text, surrounding
spaces ignored); with several, its KL is the mean over them. The reported KL is the mean over paired
generated clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KL_EPSILON", "kl_divergence", "PairedKL", "paired_kl"]

KL_EPSILON = 1e-6  # added to the generated clip's probabilities, as audiocraft does


def kl_divergence(reference: Any, generated: Any, epsilon: float = KL_EPSILON) -> np.ndarray:
    """KL(reference || generated) per row of two FloatArray[B, L] probability tables (rows sum to 1).

    Terms with a reference probability of 0 count 0 (the limit of p log p). The epsilon can put the
    divergence of two equal distributions a hair below 0; it is reported as 0."""
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(generated, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(f"label distributions must be two [clips, labels] arrays of one shape, got {p.shape} "
                         f"and {q.shape}; tag both sets with the same tagger.")
    safe = np.where(p > 0, p, 1.0)
    return np.maximum(np.sum(np.where(p > 0, p * (np.log(safe) - np.log(q + epsilon)), 0.0), axis=1), 0.0)


@dataclass
class PairedKL:
    """per_clip: KL of each generated clip (None when no reference clip has its caption);
    pairs: how many reference clips each was compared with; mean: over the paired clips (None: none)."""

    per_clip: list[float | None]
    pairs: list[int]
    mean: float | None

    @property
    def num_paired(self) -> int:
        return sum(n > 0 for n in self.pairs)


def _key(caption: str | None) -> str | None:
    return caption.strip() if isinstance(caption, str) and caption.strip() else None


def paired_kl(generated: Any, generated_captions: Sequence[str | None], reference: Any,
              reference_captions: Sequence[str | None]) -> PairedKL:
    """KL of each generated clip against the reference clips that share its caption.

    generated / reference: FloatArray[N, L] label distributions, one row per clip, with one caption
    (or None) per row.
    """
    g = np.asarray(generated, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if len(g) != len(generated_captions) or len(r) != len(reference_captions):
        raise ValueError("pass one caption per clip of each set.")
    rows: dict[str, list[int]] = {}
    for i, caption in enumerate(reference_captions):
        if (key := _key(caption)) is not None:
            rows.setdefault(key, []).append(i)
    per_clip: list[float | None] = []
    pairs: list[int] = []
    for i, caption in enumerate(generated_captions):
        found = rows.get(_key(caption) or "", [])
        pairs.append(len(found))
        if not found:
            per_clip.append(None)
            continue
        values = kl_divergence(r[found], np.repeat(g[i : i + 1], len(found), axis=0))
        per_clip.append(float(values.mean()))
    paired = [v for v in per_clip if v is not None]
    return PairedKL(per_clip, pairs, float(np.mean(paired)) if paired else None)
