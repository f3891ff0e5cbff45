"""The decoder runs the vocoder only on the mel frames that the kept audio depends on."""

from __future__ import annotations

import pytest
import torch

from codec.config import SemantiCodecConfig
from codec.decoder import DiffusionDecoder
from codec.model import SemantiCodec
from codec.sampling import DecodeSettings
from codec.vocoder import build_vocoder, vocode, vocoder_frames_needed, vocoder_output_samples


@pytest.fixture(scope="module")
def official_vocoder():
    """The official vocoder structure with random weights large enough to make every layer count."""
    config = SemantiCodecConfig(token_rate=100)
    torch.manual_seed(0)
    vocoder = build_vocoder(config).eval()
    with torch.no_grad():
        for p in vocoder.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.02)
    return config, vocoder


@pytest.mark.parametrize("frames", [1, 7, 64])
def test_output_length_formula(official_vocoder, frames):
    config, vocoder = official_vocoder
    with torch.inference_mode():
        wave = vocoder(torch.randn(1, frames, config.vae_mel_bins))
    assert wave.shape[-1] == vocoder_output_samples(config, frames)
    assert vocoder_output_samples(config, 1024) == 163872  # the official window length


def test_cut_window_gives_the_same_leading_samples(official_vocoder):
    config, vocoder = official_vocoder
    mel = torch.randn(3, 120, config.vae_mel_bins)
    samples = [700, 9000, vocoder_output_samples(config, 120)]
    with torch.inference_mode():
        whole = vocode(vocoder, config, mel)
        cut = vocode(vocoder, config, mel, samples)
    assert vocoder_frames_needed(config, 700, 120) < 120  # the first window really was cut
    scale = whole.abs().max()
    for i, n in enumerate(samples):
        assert torch.allclose(cut[i, :n], whole[i, :n], atol=1e-6 * scale, rtol=0)
        assert not cut[i, n:].any()


def test_cutting_short_of_the_reach_changes_the_audio(official_vocoder):
    """The reach is not an arbitrary margin: 20 frames fewer already change the kept samples."""
    config, vocoder = official_vocoder
    mel = torch.randn(1, 120, config.vae_mel_bins)
    n = 5000
    short = vocoder_frames_needed(config, n, 120) - 20
    with torch.inference_mode():
        whole, part = vocoder(mel), vocoder(mel[:, :short])
    assert (part[..., :n] - whole[..., :n]).abs().max() > 1e-3 * whole.abs().max()


def test_decode_equals_decode_with_whole_windows(monkeypatch):
    codec = SemantiCodec.tiny_random(100, seed=3)
    c = codec.config
    frames = c.window_tokens + c.window_tokens // 3  # two windows, the second mostly padding
    tokens = torch.stack([torch.randint(0, c.semantic_codebook_size, (2, frames)),
                          torch.randint(0, c.acoustic_codebook_size, (2, frames))], dim=-1)
    settings = DecodeSettings(sampler="dpmsolver++", steps=1)
    lengths = [frames, frames - 5]
    window = vocoder_output_samples(c, c.segment_frames)
    used = codec.decoder.used_samples(codec.decoder.plan_windows(lengths), lengths)
    # windows in the noise order: window 0 of both clips, then their second windows, the ones cut
    assert len(used) == 4 and vocoder_frames_needed(c, used[2], c.segment_frames) < c.segment_frames
    cut = codec.decode(tokens, lengths, settings, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(DiffusionDecoder, "used_samples", lambda self, plan, lengths: [window] * len(plan))
    whole = codec.decode(tokens, lengths, settings, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cut.lengths, whole.lengths)
    assert torch.allclose(cut.audio, whole.audio, atol=1e-6 * float(whole.audio.abs().max()), rtol=0)
