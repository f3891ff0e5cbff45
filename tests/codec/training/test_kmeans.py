"""Semantic codebook fitting: k-means recovers clusters; features and centroids plug into a codec."""

import pytest
import torch

from codec import SemantiCodec, SemantiCodecConfig
from codec.checkpoints import load_centroids
from codec.training.kmeans import (
    KMeansConfig,
    fit_kmeans,
    save_centroids_npy,
    semantic_features,
    set_semantic_centroids,
)


def _blobs(k=8, d=16, per=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = 10 * torch.randn(k, d, generator=g)
    points = centers.repeat_interleave(per, 0) + 0.1 * torch.randn(k * per, d, generator=g)
    return centers, points


def test_recovers_well_separated_clusters():
    centers, points = _blobs()
    result = fit_kmeans(points, KMeansConfig(num_clusters=8, batch_size=256, epochs=5))
    dist = torch.cdist(centers, result.centroids)
    assert dist.min(dim=1).values.max() < 0.1  # every true center has a fitted centroid on it
    assert result.inertia[-1] <= result.inertia[0]
    assert int(result.counts.sum()) > 0


def test_deterministic_with_seed():
    _, points = _blobs(seed=1)
    a = fit_kmeans(points, KMeansConfig(num_clusters=5, epochs=2, seed=3)).centroids
    b = fit_kmeans(points, KMeansConfig(num_clusters=5, epochs=2, seed=3)).centroids
    assert torch.equal(a, b)


def test_errors():
    with pytest.raises(ValueError, match="N >= num_clusters"):
        fit_kmeans(torch.randn(3, 2), KMeansConfig(num_clusters=5))
    with pytest.raises(ValueError, match="NaN"):
        fit_kmeans(torch.tensor([[float("nan")]] * 10), KMeansConfig(num_clusters=2))
    with pytest.raises(ValueError, match="positive"):
        KMeansConfig(num_clusters=0)


def test_fit_a_tiny_codec_codebook(tmp_path):
    torch.manual_seed(0)
    codec = SemantiCodec(SemantiCodecConfig.tiny(50, semantic_vocab_size=16))
    t = torch.arange(32000) / 16000
    clips = [0.3 * torch.sin(2 * torch.pi * f * t) for f in (220, 440, 880)]
    feats = torch.cat(list(semantic_features(codec, clips)))
    # 2 s of a 50 tokens/s codec: 2.08 s rounded up -> about 52 valid frames per clip.
    assert feats.shape[1] == codec.config.feature_dim and 140 <= feats.shape[0] <= 160
    result = fit_kmeans(feats, KMeansConfig(num_clusters=12, epochs=3))
    random_table = codec.semantic.centroids.clone()
    save_centroids_npy(tmp_path / "codebook_12_0.npy", result.centroids)
    set_semantic_centroids(codec, torch.from_numpy(load_centroids(tmp_path / "codebook_12_0.npy")))
    assert codec.semantic_vocab_size == 12
    tokens = codec.encode(clips).tokens
    assert tokens[..., 0].max() < 12
    # The fitted table quantises these features far better than the random one it replaced.
    def error(table):
        return (feats - table[torch.cdist(feats, table).argmin(1)]).pow(2).sum(1).mean()

    assert error(codec.semantic.centroids) < 0.5 * error(random_table)
