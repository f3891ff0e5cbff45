"""Audio front end: file reading, channel handling, resampling, validation."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.audio import as_waveform_list, check_waveform, load_audio, resample


def _tone(freq, rate, seconds=1.0, amp=0.5):
    t = torch.arange(int(rate * seconds)) / rate
    return amp * torch.sin(2 * math.pi * freq * t)


def _peak_hz(wave, rate):
    spec = torch.fft.rfft(wave * torch.hann_window(wave.numel()))
    return spec.abs().argmax().item() * rate / wave.numel()


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_load_formats(tmp_path, fmt, subtype):
    wave = _tone(440, 16000).numpy()
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, wave, 16000, format=fmt, subtype=subtype)
    loaded, rate = load_audio(path)
    assert rate == 16000 and loaded.dtype == torch.float32 and loaded.dim() == 1
    assert abs(_peak_hz(loaded, rate) - 440) < 2
    if subtype != "VORBIS":
        assert np.abs(loaded.numpy() - wave).max() < 1e-3


def test_stereo_first_channel_or_mean(tmp_path):
    left, right = _tone(440, 16000).numpy(), _tone(1000, 16000).numpy()
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    first, _ = load_audio(path)
    mean, _ = load_audio(path, mono="mean")
    assert np.allclose(first.numpy(), left)
    assert np.allclose(mean.numpy(), (left + right) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="mono='loudest'"):
        load_audio(path, mono="loudest")


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    with pytest.raises(ValueError, match="could not read audio file"):
        load_audio(bad)
    with pytest.raises(IsADirectoryError):
        load_audio(tmp_path)


@pytest.mark.parametrize("orig", [8000, 22050, 44100, 48000])
def test_resample_keeps_tones_and_length(orig):
    wave = _tone(1000, orig)
    out = resample(wave, orig, 16000)
    assert out.numel() == math.ceil(wave.numel() * 16000 / orig)
    assert abs(_peak_hz(out, 16000) - 1000) < 2
    # Amplitude is preserved away from the edges.
    assert out[2000:-2000].abs().max() == pytest.approx(0.5, abs=0.01)


def test_resample_removes_content_above_new_nyquist():
    out = resample(_tone(10000, 44100), 44100, 16000)
    assert out[2000:-2000].abs().max() < 0.01


def test_resample_batched_equals_rows():
    torch.manual_seed(0)
    batch = torch.randn(3, 4410)
    out = resample(batch, 44100, 16000)
    for i in range(3):
        assert torch.allclose(out[i], resample(batch[i], 44100, 16000), atol=1e-6)


def test_resample_errors():
    with pytest.raises(ValueError, match="positive integers"):
        resample(torch.zeros(10), 0, 16000)
    with pytest.raises(TypeError, match="floating-point"):
        resample(torch.zeros(10, dtype=torch.int16), 8000, 16000)


def test_check_waveform_errors():
    with pytest.raises(ValueError, match="0 samples"):
        check_waveform(torch.zeros(0))
    with pytest.raises(ValueError, match="NaN or Inf"):
        check_waveform(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        check_waveform(torch.tensor([0.0, float("inf")]))
    with pytest.raises(ValueError, match="1-D waveform"):
        check_waveform(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        check_waveform(torch.zeros(5, dtype=torch.int16))
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_waveform([0.0, 1.0])


def test_batch_forms():
    padded = torch.randn(2, 100)
    clips = as_waveform_list(padded, lengths=[100, 40])
    assert [c.numel() for c in clips] == [100, 40]
    assert len(as_waveform_list(np.zeros(50, dtype=np.float32))) == 1
    with pytest.raises(ValueError, match="empty list"):
        as_waveform_list([])
    with pytest.raises(ValueError, match="lengths must lie"):
        as_waveform_list(padded, lengths=[101, 3])
    with pytest.raises(ValueError, match="one entry per clip"):
        as_waveform_list(padded, lengths=[10])
    with pytest.raises(TypeError, match="torch.Tensor, numpy array or a list"):
        as_waveform_list("audio.wav")
