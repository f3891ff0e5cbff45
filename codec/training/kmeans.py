"""Semantic codebook fitting: AudioMAE features over a corpus -> k-means centroids.

Mini-batch k-means (Sculley, 2010) in torch so that it runs on the GPU and on corpora that
do not fit in memory; distances in float32. faiss is faster on huge corpora but is not a
dependency here; the result is saved in the official ``codebook_*.npy`` format and can be
put into a codec with ``set_semantic_centroids``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from codec.semantic import nearest_code, stack_patches

logger = logging.getLogger(__name__)


@dataclass
class KMeansConfig:
    num_clusters: int
    batch_size: int = 4096  # feature vectors per update
    epochs: int = 10  # passes over the features (in-memory fitting)
    seed: int = 0
    reassign_dead_after: int = 2  # epochs without any assignment before a centroid is re-seeded

    def __post_init__(self) -> None:
        if self.num_clusters < 1 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError("num_clusters, batch_size and epochs must be positive.")


@dataclass
class KMeansResult:
    """centroids: FloatTensor[K, D]; inertia: mean squared distance per epoch; counts[K]."""

    centroids: torch.Tensor
    inertia: list[float] = field(default_factory=list)
    counts: torch.Tensor | None = None


def _kmeans_pp_init(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding on (a sample of) the data."""
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    centers = [x[first]]
    dist = (x - x[first]).pow(2).sum(-1)
    for _ in range(1, k):
        total = dist.sum()
        if total <= 0:  # fewer distinct points than clusters: pick at random
            idx = torch.randint(n, (1,), generator=generator).item()
        else:
            idx = torch.multinomial((dist / total).cpu(), 1, generator=generator).item()
        centers.append(x[idx])
        dist = torch.minimum(dist, (x - x[idx]).pow(2).sum(-1))
    return torch.stack(centers)


def fit_kmeans(features: torch.Tensor, config: KMeansConfig, progress: bool = False) -> KMeansResult:
    """Fit centroids to ``features`` [N, D] (on their device) with mini-batch k-means."""
    if features.dim() != 2 or features.shape[0] < config.num_clusters:
        raise ValueError(
            f"features must be [N, D] with N >= num_clusters={config.num_clusters}, got {tuple(features.shape)}."
        )
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or Inf.")
    x = features.float()
    g = torch.Generator().manual_seed(config.seed)
    sample = x[torch.randperm(x.shape[0], generator=g)[: max(20 * config.num_clusters, 10000)].to(x.device)]
    centroids = _kmeans_pp_init(sample, config.num_clusters, g).clone()
    counts = torch.zeros(config.num_clusters, device=x.device)
    idle = torch.zeros(config.num_clusters, dtype=torch.long, device=x.device)
    result = KMeansResult(centroids)
    epochs = range(config.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="k-means", unit="epoch")
    for _ in epochs:
        seen = torch.zeros(config.num_clusters, dtype=torch.bool, device=x.device)
        sq_err = 0.0
        for batch in x[torch.randperm(x.shape[0], generator=g).to(x.device)].split(config.batch_size):
            ids = nearest_code(batch, centroids)
            sq_err += (batch - centroids[ids]).pow(2).sum().item()
            seen[ids] = True
            batch_counts = torch.bincount(ids, minlength=config.num_clusters).float()
            sums = torch.zeros_like(centroids).index_add_(0, ids, batch)
            counts += batch_counts
            hit = batch_counts > 0
            # Per-centroid learning rate 1/count: the running mean of every vector assigned so far.
            rate = (batch_counts[hit] / counts[hit])[:, None]
            centroids[hit] += rate * (sums[hit] / batch_counts[hit][:, None] - centroids[hit])
        idle = torch.where(seen, torch.zeros_like(idle), idle + 1)
        dead = (idle >= config.reassign_dead_after).nonzero().flatten()
        if dead.numel():
            # Re-seed dead centroids on random data points, so that every code ends up used.
            picks = torch.randint(x.shape[0], (dead.numel(),), generator=g).to(x.device)
            centroids[dead] = x[picks]
            counts[dead] = 0
            idle[dead] = 0
            logger.info("k-means: re-seeded %d unused centroids", dead.numel())
        result.inertia.append(sq_err / x.shape[0])
    result.centroids, result.counts = centroids, counts
    return result


@torch.inference_mode()
def semantic_features(codec, clips: Iterable[torch.Tensor], batch_size: int = 8) -> Iterator[torch.Tensor]:
    """Stacked AudioMAE features [n, D] of 16 kHz clips, padding frames removed.

    Clips are taken ``batch_size`` at a time (one front-end call) and their segments go through
    AudioMAE ``batch_size`` at a time; one tensor is yielded per group of clips, in clip order.
    These are the vectors the semantic quantiser assigns to centroids, so fitting k-means on
    them gives a codebook for ``codec``'s token rate.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    group: list[torch.Tensor] = []
    for clip in clips:
        group.append(clip)
        if len(group) == batch_size:
            yield _group_features(codec, group, batch_size)
            group = []
    if group:
        yield _group_features(codec, group, batch_size)


def _group_features(codec, clips: list[torch.Tensor], batch_size: int) -> torch.Tensor:
    fbank, _ = codec.fbank_segments(clips)
    parts = []
    for start in range(0, fbank.shape[0], batch_size):
        part = fbank[start : start + batch_size].to(codec.device)
        valid = codec.valid_token_frames(part)
        stacked = stack_patches(codec.audiomae(part), codec.config).float()
        keep = torch.arange(stacked.shape[1], device=stacked.device)[None] < valid[:, None]
        parts.append(stacked[keep].cpu())
    return torch.cat(parts)


def set_semantic_centroids(codec, centroids: torch.Tensor) -> None:
    """Put a fitted table into ``codec`` (its row count becomes the semantic vocabulary)."""
    d = codec.config.feature_dim
    if centroids.dim() != 2 or centroids.shape[1] != d:
        raise ValueError(f"centroids must be [V, {d}], got {tuple(centroids.shape)}.")
    codec.semantic.centroids = centroids.detach().float().to(codec.device).clone()
    codec.config.semantic_codebook_size = int(centroids.shape[0])


def save_centroids_npy(path: str | Path, centroids: torch.Tensor) -> None:
    """Official format: a float32 ``.npy`` table [V, D] (``codebook_{V}_0.npy``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, centroids.detach().float().cpu().numpy())
