"""Audio cells decoded without torchcodec: PCM scaling, channels, bytes / path / array cells."""

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.data.corpus import decode_audio_cell, pcm_to_float


def test_integer_pcm_is_scaled_to_unit_range():
    assert pcm_to_float(np.array([-32768, 0, 16384], np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert pcm_to_float(np.array([0, 128, 192], np.uint8)).tolist() == [-1.0, 0.0, 0.5]
    assert pcm_to_float(np.array([-(2**31), 2**30], np.int32)).tolist() == [-1.0, 0.5]
    assert pcm_to_float(np.array([-32768, 16384], np.int64)).tolist() == [-1.0, 0.5]  # ints of a list column
    assert pcm_to_float(np.array([0.25], np.float64)).dtype == np.float32
    with pytest.raises(ValueError, match="must be numbers"):
        pcm_to_float(np.array(["a"]))


def test_cells_of_every_form_decode_to_the_same_first_channel(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (0.2 * rng.standard_normal((800, 2))).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, stereo, 8000, subtype="FLOAT")
    data = path.read_bytes()
    expected = torch.from_numpy(stereo[:, 0])
    for cell in ({"bytes": data, "path": None}, {"bytes": None, "path": str(path)}, data,
                 {"array": stereo, "sampling_rate": 8000}, {"array": stereo.T, "sampling_rate": 8000}):
        wave, rate = decode_audio_cell(cell)
        assert rate == 8000 and torch.equal(wave, expected)
    wave, _ = decode_audio_cell({"bytes": data, "path": None}, mono="mean")
    assert torch.allclose(wave, torch.from_numpy(stereo.mean(1)))
    pcm = io.BytesIO()
    sf.write(pcm, (stereo[:, 0] * 32767).astype(np.int16), 8000, format="WAV", subtype="PCM_16")
    assert decode_audio_cell(pcm.getvalue())[0].abs().max() <= 1.0


def test_bad_cells_are_value_errors():
    with pytest.raises(ValueError, match="cannot decode the audio"):
        decode_audio_cell(b"not audio")
    with pytest.raises(ValueError, match="without a sampling rate"):
        decode_audio_cell(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="none of array, bytes, path"):
        decode_audio_cell({"other": 1})
    assert decode_audio_cell({"array": np.zeros((1, 0), np.float32), "sampling_rate": 16000})[0].numel() == 0
