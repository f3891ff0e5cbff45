"""Fixtures shared by the codec tests: a decoder with short windows and its lookup tables; the fast
paths on and off."""

from __future__ import annotations

import pytest
import torch

from codec import fast_paths
from codec.config import SemantiCodecConfig
from codec.decoder import DiffusionDecoder


@pytest.fixture(scope="module")
def config() -> SemantiCodecConfig:
    # Short 1.28 s windows (128 fbank frames -> 64 tokens with a 4-frame overlap, latent 8 x 32 x 16)
    # keep the tests fast.
    return SemantiCodecConfig.tiny(segment_frames=128, latent_time=32, unet_block_channels=(32, 32))


@pytest.fixture(scope="module")
def decoder(config) -> DiffusionDecoder:
    torch.manual_seed(0)
    return DiffusionDecoder(config).eval()


@pytest.fixture(scope="module")
def tables(config) -> tuple[torch.Tensor, torch.Tensor]:
    """(acoustic codebook, semantic centroids) drawn from a fixed seed."""
    g = torch.Generator().manual_seed(1)
    acoustic = torch.randn(config.acoustic_codebook_size, config.feature_dim, generator=g)
    semantic = torch.randn(config.semantic_codebook_size, config.feature_dim, generator=g)
    return acoustic, semantic


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
def fast(request) -> bool:
    """Runs the test twice: with the codec's fast paths (the default) and with its plain modules."""
    with fast_paths(request.param):
        yield request.param
