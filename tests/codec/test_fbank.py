"""Kaldi fbank: exactness against torchaudio's output recorded in the fixtures, batching."""

from pathlib import Path

import numpy as np
import torch

from codec import SemantiCodecConfig
from codec.fbank import kaldi_fbank, num_fbank_frames

FIXTURE = Path(__file__).parents[1] / "fixtures" / "parity_small.npz"
CONFIG = SemantiCodecConfig.official(100)


def _padded_short_input():
    wave = torch.from_numpy(np.load(FIXTURE)["short_input_wave"])
    padded = torch.zeros(CONFIG.segment_samples)
    padded[: wave.numel()] = wave
    return wave, padded


def test_matches_recorded_torchaudio_fbank():
    """Official fbank (torchaudio kaldi.fbank + normalisation), atol 1e-4 per the fixture README."""
    _, padded = _padded_short_input()
    ours = kaldi_fbank(padded[None], None, CONFIG, num_frames=CONFIG.segment_frames)
    ref = torch.from_numpy(np.load(FIXTURE)["short_enc_fbank_head"])
    assert torch.allclose(ours[:, : ref.shape[1]], ref, atol=1e-4, rtol=1e-4)


def test_frame_count_and_padding_rows():
    _, padded = _padded_short_input()
    out = kaldi_fbank(padded[None], None, CONFIG, num_frames=CONFIG.segment_frames)
    n = num_fbank_frames(padded.numel(), CONFIG)
    assert n == CONFIG.segment_frames - 2  # snip_edges drops the last 2.5 hops
    pad_value = (0 - CONFIG.fbank_mean) / (2 * CONFIG.fbank_std)
    assert torch.allclose(out[0, n:], torch.full_like(out[0, n:], pad_value))


def test_batched_equals_single_with_own_means():
    torch.manual_seed(0)
    a = 0.3 * torch.randn(20000) + 0.1
    b = 0.2 * torch.randn(12000) - 0.05
    batch = torch.zeros(2, 20000)
    batch[0], batch[1, :12000] = a, b
    out = kaldi_fbank(batch, torch.tensor([20000, 12000]), CONFIG, num_frames=130)
    single_a = kaldi_fbank(a[None], None, CONFIG, num_frames=130)
    single_b = kaldi_fbank(b[None], None, CONFIG, num_frames=130)
    assert torch.allclose(out[0], single_a[0], atol=1e-5)
    assert torch.allclose(out[1], single_b[0], atol=1e-5)


def test_spectral_peak_lands_in_the_right_mel_bin():
    t = torch.arange(16000) / 16000
    low = kaldi_fbank(torch.sin(2 * torch.pi * 300 * t)[None], None, CONFIG)
    high = kaldi_fbank(torch.sin(2 * torch.pi * 5000 * t)[None], None, CONFIG)
    assert low[0].mean(0).argmax() < high[0].mean(0).argmax()


def test_padding_frames_copied_from_one_equal_the_computed_ones():
    """With ``signal_lengths`` the frames inside a clip's zero padding come from one computed frame;
    they must equal what computing every frame gives (clips with a DC offset, padded to 2 segments)."""
    torch.manual_seed(0)
    config = SemantiCodecConfig.tiny()
    total = 2 * config.segment_samples
    signal = torch.tensor([total - 700, 9000, total])
    waves = torch.zeros(3, total)
    for row, n in enumerate(signal.tolist()):
        waves[row, :n] = 0.3 * torch.randn(n) + 0.2
    lengths = torch.full((3,), total)
    computed = kaldi_fbank(waves, lengths, config, num_frames=2 * config.segment_frames)
    copied = kaldi_fbank(waves, lengths, config, num_frames=2 * config.segment_frames, signal_lengths=signal)
    assert torch.equal(copied, computed)
    silent = int(signal[1]) // config.hop_length + 3
    assert torch.equal(copied[1, silent], copied[1, -3])  # padding frames are alike; the last 2 are cut off
