"""Codec quality metrics on cases with known answers."""

import math

import pytest
import torch

from codec.eval import metrics

SR = 16000


def tone(freq: float, seconds: float = 1.0, amplitude: float = 0.5, phase: float = 0.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * freq * t + phase)).float()


@pytest.fixture
def speechlike():
    """Harmonic bursts with silent gaps (PESQ's voice activity detector needs the gaps)."""
    t = torch.arange(3 * SR) / SR
    envelope = torch.sin(2 * math.pi * 2 * t).clamp(min=0)
    return (envelope * sum(torch.sin(2 * math.pi * 180 * h * t) / h for h in range(1, 8)) * 0.2).float()


def test_identical_signals_are_perfect():
    x = tone(440.0) + 0.05 * torch.randn(SR, generator=torch.Generator().manual_seed(0))
    assert float(metrics.mel_distance(x, x)) == 0.0
    assert float(metrics.multi_resolution_stft_distance(x, x)) == 0.0
    assert float(metrics.si_sdr(x, x)) > 100.0


def test_si_sdr_ignores_scale_but_mel_and_stft_do_not():
    x = tone(440.0) + 0.3 * torch.randn(SR, generator=torch.Generator().manual_seed(5))  # every mel bin above the floor
    assert float(metrics.si_sdr(x, 0.25 * x)) > 100.0
    assert float(metrics.mel_distance(x, 0.5 * x)) == pytest.approx(math.log(2), rel=1e-3)  # log-mel shifts by log 2
    assert float(metrics.multi_resolution_stft_distance(x, 0.5 * x)) > 0.5


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_si_sdr_of_added_noise_is_the_snr(snr_db):
    x = tone(300.0, seconds=2.0)
    noise = torch.randn(x.numel(), generator=torch.Generator().manual_seed(1))
    noise = noise - noise.mean()
    noise = noise * (x.pow(2).sum() / noise.pow(2).sum() / 10 ** (snr_db / 10)).sqrt()
    assert float(metrics.si_sdr(x, x + noise)) == pytest.approx(snr_db, abs=0.2)


def test_distances_grow_with_noise_and_batch_matches_rows():
    g = torch.Generator().manual_seed(2)
    x = tone(500.0).repeat(3, 1)
    noisy = x + torch.tensor([0.01, 0.1, 0.5])[:, None] * torch.randn(x.shape, generator=g)
    for fn in (metrics.mel_distance, metrics.multi_resolution_stft_distance):
        values = fn(x, noisy)
        assert values.shape == (3,) and bool((values.diff() > 0).all()), fn.__name__
        assert float(fn(x[1], noisy[1])) == pytest.approx(float(values[1]), rel=1e-5)
    assert bool((metrics.si_sdr(x, noisy).diff() < 0).all())


def test_metric_input_errors():
    x = tone(440.0)
    with pytest.raises(ValueError, match="same shape; trim"):
        metrics.si_sdr(x, x[:-1])
    with pytest.raises(TypeError, match="floating-point"):
        metrics.mel_distance(x, (x * 1000).long())
    with pytest.raises(ValueError, match="NaN or Inf"):
        metrics.multi_resolution_stft_distance(x, torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match=r"\[samples\] or \[batch, samples\]"):
        metrics.si_sdr(x[None, None], x[None, None])
    with pytest.raises(TypeError, match="torch.Tensor"):
        metrics.si_sdr(x.numpy(), x)
    with pytest.raises(ValueError, match="unknown optional metric"):
        metrics.metric_unavailable("mos")
    with pytest.raises(ValueError, match="mode must be one of"):
        metrics.visqol(x, x, mode="music")


@pytest.mark.skipif(metrics.metric_unavailable("pesq") is not None, reason="pesq not installed")
def test_pesq_orders_degradations(speechlike):
    g = torch.Generator().manual_seed(3)
    clean = float(metrics.pesq_wideband(speechlike, speechlike))
    noisy = float(metrics.pesq_wideband(speechlike, speechlike + 0.05 * torch.randn(speechlike.shape, generator=g)))
    assert clean > 4.0 and noisy < clean
    # a 48 kHz pair is resampled to 16 kHz first
    from codec.audio import resample

    assert float(metrics.pesq_wideband(resample(speechlike, SR, 48000), resample(speechlike, SR, 48000), 48000)) > 4.0
    with pytest.raises(ValueError, match="PESQ cannot score"):
        metrics.pesq_wideband(torch.zeros(SR), torch.zeros(SR))


@pytest.mark.skipif(metrics.metric_unavailable("stoi") is not None, reason="pystoi not installed")
def test_stoi_orders_degradations(speechlike):
    g = torch.Generator().manual_seed(4)
    clean = float(metrics.stoi(speechlike, speechlike))
    noisy = float(metrics.stoi(speechlike, speechlike + 0.3 * torch.randn(speechlike.shape, generator=g)))
    assert clean == pytest.approx(1.0, abs=1e-3) and noisy < clean


@pytest.mark.skipif(metrics.metric_unavailable("visqol") is not None, reason="visqol-python not installed")
def test_visqol_orders_degradations():
    """ViSQOL v3 audio mode (48 kHz, resampled): identical clips score near the top of 1..5, noise lower."""
    g = torch.Generator().manual_seed(6)
    x = tone(440.0, seconds=1.5) * (1 + 0.3 * tone(3.0, seconds=1.5, amplitude=1.0))
    clean = float(metrics.visqol(x, x))
    noisy = float(metrics.visqol(x, x + 0.05 * torch.randn(x.shape, generator=g)))
    assert 4.0 < clean <= 5.0 and 1.0 <= noisy < clean - 1.0
    batch = metrics.visqol(torch.stack([x, x]), torch.stack([x, x]))
    assert batch.shape == (2,) and float(batch[0]) == pytest.approx(clean)
    with pytest.raises(ValueError, match="ViSQOL cannot score this clip"):
        metrics.visqol(x[: SR // 4], x[: SR // 4])  # shorter than one ViSQOL patch
    with pytest.raises(ValueError, match="ViSQOL gives no score"):
        metrics.visqol(torch.zeros(SR * 2), torch.zeros(SR * 2))


@pytest.mark.parametrize("name, module, package, call", [
    ("pesq", "pesq", "pesq", lambda x: metrics.pesq_wideband(x, x)),
    ("visqol", "visqol", "visqol-python", lambda x: metrics.visqol(x, x)),
])
def test_missing_package_says_how_to_install(monkeypatch, name, module, package, call):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == module else real(n, *a))
    assert f"the {package!r} package is not installed" in metrics.metric_unavailable(name)
    assert "semantilm[eval]" in metrics.metric_unavailable(name)
    with pytest.raises(ImportError, match=rf"{name.upper()} cannot run: .*pip install 'semantilm\[eval\]'"):
        call(tone(440.0))


@pytest.mark.parametrize("freq", [130.81, 440.0, 987.77, 3001.5])
def test_dominant_frequency_is_sub_bin_accurate(freq):
    x = tone(freq, seconds=0.5, phase=0.7)
    assert metrics.dominant_frequency(x, SR) == pytest.approx(freq, rel=2e-3)
    assert metrics.dominant_frequency(x.numpy(), SR) == pytest.approx(freq, rel=2e-3)


def test_dominant_frequency_of_a_chord_root_and_silence():
    chord = tone(261.63) + 0.6 * tone(329.63) + 0.6 * tone(392.0)
    assert metrics.dominant_frequency(chord, SR) == pytest.approx(261.63, rel=5e-3)
    assert math.isnan(metrics.dominant_frequency(torch.zeros(1000), SR))
    with pytest.raises(ValueError, match="1-D waveform"):
        metrics.dominant_frequency(torch.zeros(2, 100), SR)
    with pytest.raises(ValueError, match="sample_rate"):
        metrics.dominant_frequency(chord, 0)
