"""Fréchet Audio Distance (Kilgour et al., 2019): the Fréchet distance between two Gaussians fitted to
the embeddings of two sets of clips,

    FAD = |mu_g - mu_r|^2 + Tr(C_g + C_r - 2 (C_g C_r)^(1/2)).

The trace of the matrix square root is computed as the sum of the square roots of the eigenvalues of
the symmetric matrix C_g^(1/2) C_r C_g^(1/2) (similar to C_g C_r), with eigenvalues rounded below zero
set to zero: exact for positive semi-definite covariances, no complex parts and no diagonal offset when
there are fewer clips than dimensions.

FAD is biased upwards at small N (Binkowski et al., 2018; Chong and Forsyth, 2020), so a number is
only comparable at equal N. Where N allows (:data:`MIN_CLIPS_FOR_SPREAD`), two aids are given:
FAD-infinity, the intercept of a straight line fitted to FAD against 1/n over random subsets of n
generated clips (Chong and Forsyth's FID-infinity, as fadtk (Gui et al., 2024) applies it to audio),
and a bootstrap interval over resampled sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MIN_CLIPS_FOR_SPREAD", "GaussianStats", "FadResult", "gaussian_stats", "frechet_distance",
           "fad_infinity", "fad_bootstrap", "frechet_audio_distance"]

MIN_CLIPS_FOR_SPREAD = 10  # fewer generated clips than this: no FAD-infinity and no bootstrap interval
_SUBSET_SIZES = 8  # subset sizes of the FAD-infinity fit


@dataclass
class GaussianStats:
    """Mean FloatArray[D] and covariance FloatArray[D, D] (float64) of ``count`` embeddings."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def gaussian_stats(embeddings: Any, name: str = "embeddings") -> GaussianStats:
    """Mean and (unbiased) covariance of FloatArray[N, D] embeddings, N >= 2, all finite."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [clips, dimensions], got shape {x.shape}.")
    if x.shape[0] < 2:
        raise ValueError(f"{name} has {x.shape[0]} clip(s); a covariance needs at least 2.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values.")
    return GaussianStats(x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]), x.shape[0])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues below 0 from rounding -> 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet distance between the Gaussians ``a`` and ``b`` (>= 0)."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"the two sets of embeddings have different sizes ({a.mean.shape[0]} and "
                         f"{b.mean.shape[0]}); embed both with the same model.")
    root = _psd_sqrt(a.cov)
    product = root @ b.cov @ root
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    cross = float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    diff = a.mean - b.mean
    return max(0.0, float(diff @ diff) + float(np.trace(a.cov)) + float(np.trace(b.cov)) - 2 * cross)


def fad_infinity(generated: np.ndarray, reference: GaussianStats, seed: int = 0) -> dict[str, float] | None:
    """FAD extrapolated to infinitely many generated clips: FAD of random subsets of n generated clips
    (n from N/2 to N) against the whole reference, a least-squares line over 1/n, its value at 1/n = 0.

    Returns ``{"value", "slope", "r2"}``, or None below :data:`MIN_CLIPS_FOR_SPREAD` clips.
    """
    count = len(generated)
    if count < MIN_CLIPS_FOR_SPREAD:
        return None
    rng = np.random.default_rng(seed)
    sizes = sorted({int(n) for n in np.linspace(max(2, count // 2), count, _SUBSET_SIZES)})
    values = [frechet_distance(gaussian_stats(generated[rng.choice(count, n, replace=False)]), reference)
              for n in sizes]
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    slope, intercept = np.polyfit(x, values, 1)
    residual = np.asarray(values) - (slope * x + intercept)
    spread = float(np.sum((np.asarray(values) - np.mean(values)) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / spread if spread > 0 else 1.0
    return {"value": float(intercept), "slope": float(slope), "r2": r2}


def fad_bootstrap(generated: np.ndarray, reference: np.ndarray, rounds: int, seed: int = 0,
                  level: float = 0.95) -> dict[str, float] | None:
    """Percentile interval of FAD over ``rounds`` resamplings (with replacement) of both sets.

    Repeated clips narrow each resampled set, so the interval shows the spread of FAD at this N, not
    its bias. Returns ``{"low", "high", "level", "rounds"}``, or None (too few clips or rounds == 0).
    """
    if rounds <= 0 or min(len(generated), len(reference)) < MIN_CLIPS_FOR_SPREAD:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        g = generated[rng.integers(0, len(generated), len(generated))]
        r = reference[rng.integers(0, len(reference), len(reference))]
        values.append(frechet_distance(gaussian_stats(g), gaussian_stats(r)))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {"low": float(low), "high": float(high), "level": level, "rounds": rounds}


@dataclass
class FadResult:
    """FAD of a generated set against a reference set, with the numbers that say how far to trust it.

    value:        FAD (lower is better; 0 for identical statistics).
    num_generated / num_reference / dimensions: N of each set and the embedding size.
    infinity:     FAD-infinity fit (``value``, ``slope``, ``r2``) or None; bootstrap: interval or None.
    """

    value: float
    num_generated: int
    num_reference: int
    dimensions: int
    infinity: dict[str, float] | None = None
    bootstrap: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)


def frechet_audio_distance(generated: Any, reference: Any, bootstrap: int = 200, seed: int = 0) -> FadResult:
    """FAD between FloatArray[N_g, D] generated and FloatArray[N_r, D] reference embeddings, with
    FAD-infinity and a ``bootstrap``-round interval where there are enough clips, and the caveats."""
    g = np.asarray(generated, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    g_stats, r_stats = gaussian_stats(g, "generated embeddings"), gaussian_stats(r, "reference embeddings")
    result = FadResult(frechet_distance(g_stats, r_stats), len(g), len(r), int(g.shape[1]),
                       fad_infinity(g, r_stats, seed), fad_bootstrap(g, r, bootstrap, seed))
    small = min(len(g), len(r))
    result.notes.append(f"FAD is biased upwards at small N (here {len(g)} generated, {len(r)} reference clips, "
                        f"{g.shape[1]} dimensions): compare values only at the same N and with the same embedder.")
    if small < MIN_CLIPS_FOR_SPREAD:
        result.notes.append(f"fewer than {MIN_CLIPS_FOR_SPREAD} clips: no FAD-infinity and no bootstrap interval.")
    elif small <= g.shape[1]:
        result.notes.append("fewer clips than dimensions: the covariances are singular, FAD still holds but "
                            "varies a lot between samples; see the bootstrap interval.")
    if result.infinity is not None and not math.isfinite(result.infinity["value"]):
        result.infinity = None
    return result
