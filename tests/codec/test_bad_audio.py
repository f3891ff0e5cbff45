"""Bad and odd audio through the codec's one audio entry (``codec.audio``): every case is refused with an error
naming the clip and the problem, or encoded by the documented rule (channels), or warned about."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import SemantiCodec
from codec.audio import AudioWarning, as_waveform_list, load_audio
from codec.compress import compress


@pytest.fixture(scope="module")
def codec():
    return SemantiCodec.tiny_random(100, with_decoder=False)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def tone(seconds: float = 0.5, rate: int = 16000, freq: float = 440.0, amp: float = 0.4) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return amp * torch.sin(2 * math.pi * freq * t)


def stereo(rate: int = 16000) -> torch.Tensor:
    """[2, N]: a 440 Hz left and a 1 kHz right channel."""
    return torch.stack([tone(rate=rate), tone(rate=rate, freq=1000.0, amp=0.2)])


# ----- channels: one rule for tensors, arrays and files -----------------------------------------------
def test_a_channels_first_stereo_tensor_is_refused_with_how_to_pass_it(codec):
    with pytest.raises(ValueError) as info:
        codec.encode(stereo())
    message = str(info.value)
    assert "shape (2, 8000)" in message and "2 channels" in message and "2 mono clips" in message
    assert "[audio]" in message and "list(audio)" in message and "lengths=" in message


@pytest.mark.parametrize("mono", ["first", "mean"])
def test_channels_last_arrays_lists_and_files_follow_one_mono_rule(codec, tmp_path, mono):
    wave = stereo()
    expected = wave[0] if mono == "first" else wave.mean(0)
    reference = codec.encode(expected).tokens
    path = tmp_path / "stereo.wav"
    sf.write(path, wave.T.numpy(), 16000, subtype="FLOAT")
    for audio in (wave.T.contiguous(), wave.T.numpy(), [wave], [wave.T], [wave.numpy()]):
        assert torch.equal(codec.encode(audio, mono=mono).tokens, reference)
    assert torch.equal(codec.encode_file(path, mono=mono).tokens, reference)


def test_batch_forms_stay_batches():
    assert len(as_waveform_list(torch.zeros(12, 500))) == 12  # more rows than channels: a batch
    assert len(as_waveform_list(torch.zeros(3, 500), lengths=[500, 400, 10])) == 3  # lengths: a batch
    assert [c.shape for c in as_waveform_list(torch.zeros(1, 500))] == [torch.Size([500])]  # [1, N]: one clip
    assert [c.shape for c in as_waveform_list(np.zeros((500, 6), np.float32))] == [torch.Size([500])]


BAD_ENCODE = [
    # (audio, keyword arguments, error type, words the message must hold)
    (torch.zeros(0), {}, ValueError, ["audio", "empty", "0 samples"]),
    (torch.full((1600,), float("nan")), {}, ValueError, ["audio", "1600 NaN or Inf"]),
    (torch.tensor([0.1] * 1600 + [float("inf")]), {}, ValueError, ["audio", "1 NaN or Inf"]),
    (torch.zeros(1600, dtype=torch.int16), {}, TypeError, ["audio", "floating-point", "32768"]),
    (np.zeros(1600, dtype=np.int32), {}, TypeError, ["audio", "floating-point"]),
    (np.array(["a", "b"]), {}, TypeError, ["audio", "numeric array", "<U1"]),
    (torch.zeros(2, 3, 1600), {}, ValueError, ["audio must be [samples]", "(2, 3, 1600)"]),
    (torch.tensor(0.5), {}, ValueError, ["audio must be", "got shape ()"]),
    ("song.wav", {}, TypeError, ["audio must be", "got str"]),
    (None, {}, TypeError, ["audio must be", "NoneType"]),
    ([], {}, ValueError, ["empty list"]),
    ([tone(), torch.zeros(0)], {}, ValueError, ["audio[1]", "empty"]),
    ([tone(), torch.full((800,), float("nan"))], {}, ValueError, ["audio[1]", "NaN"]),
    ([tone(), [0.1, 0.2]], {}, TypeError, ["audio[1]", "torch.Tensor", "list"]),
    ([tone(), torch.zeros(20, 800)], {}, ValueError, ["audio[1]", "(20, 800)", "at most 8 channels"]),
    ([tone(), torch.zeros(100)], {}, ValueError, ["audio[1]", "too short", "100 samples", "at least 400"]),
    (torch.zeros(500), {"sample_rate": 48000}, ValueError, ["audio", "too short", "167 samples at 16000 Hz"]),
    (tone(), {"sample_rate": 0}, ValueError, ["sample_rate must be a positive integer", "0"]),
    (tone(), {"sample_rate": -16000}, ValueError, ["sample_rate must be a positive integer", "-16000"]),
    (tone(), {"sample_rate": 16000.5}, ValueError, ["sample_rate must be a positive integer", "16000.5"]),
    (tone(), {"sample_rate": True}, ValueError, ["sample_rate must be a positive integer", "True"]),
    ([tone(), tone()], {"sample_rate": [16000]}, ValueError, ["sample_rate", "one per clip (2)"]),
    (tone(), {"lengths": [10]}, ValueError, ["lengths", "1-D clip"]),
    ([tone()], {"lengths": [10]}, ValueError, ["lengths", "not a list"]),
    (torch.zeros(2, 900), {"lengths": [900]}, ValueError, ["lengths", "one entry per clip (2)"]),
    (torch.zeros(2, 900), {"lengths": [900, 901]}, ValueError, ["lengths must lie in [0, 900]", "901"]),
    (torch.zeros(2, 900), {"lengths": [900.0, 500.5]}, ValueError, ["lengths must lie", "whole samples"]),
    (tone(), {"mono": "loudest"}, ValueError, ["mono='loudest'", "first", "mean"]),
    (tone(), {"batch_size": 0}, ValueError, ["batch_size must be an integer >= 1", "0"]),
    (tone(), {"batch_size": -1}, ValueError, ["batch_size must be an integer >= 1", "-1"]),
    (tone(), {"batch_size": True}, ValueError, ["batch_size", "True"]),
    ([tone(), tone()], {"names": ["only one"]}, ValueError, ["names", "one name per clip (2)"]),
    ([tone(), torch.zeros(0)], {"names": ["a.wav", "b.wav"]}, ValueError, ["b.wav is empty"]),
]


@pytest.mark.parametrize(("audio", "kwargs", "error", "words"), BAD_ENCODE)
def test_bad_audio_is_refused_with_its_name_and_problem(codec, audio, kwargs, error, words):
    with pytest.raises(error) as info:
        codec.encode(audio, **kwargs)
    assert type(info.value) is error
    for word in words:
        assert word in str(info.value), (word, str(info.value))


# ----- warnings: clipping and cut-off files -------------------------------------------------------------
def test_clipping_is_warned_about_naming_the_clip(codec):
    loud = tone(amp=1.5)
    with pytest.warns(AudioWarning, match=r"audio\[1\] has \d+ samples beyond \[-1, 1\] \(peak 1.5\)"):
        codec.encode([tone(), loud])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # full scale is not clipping
        codec.encode(tone(amp=1.0))


def test_a_file_shorter_than_its_header_is_read_with_a_warning(tmp_path):
    full = tmp_path / "full.wav"
    sf.write(full, tone(1.0).numpy(), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.warns(AudioWarning, match=r"'.*cut.wav' is shorter than its header says"):
        wave, rate = load_audio(cut)
    assert rate == 16000 and 7000 < wave.numel() < 8100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_audio(full)[0].numel() == 16000


BAD_FILES = [
    # (file maker, error type, words the message must hold besides the file name)
    (lambda p: None, FileNotFoundError, ["does not exist"]),
    (lambda p: p.mkdir(), IsADirectoryError, ["is a directory"]),
    (lambda p: p.write_bytes(b"RIFF not audio"), ValueError, ["could not read audio file"]),
    (lambda p: p.write_bytes(b""), ValueError, ["could not read audio file"]),
    (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), ValueError, ["empty", "0 samples"]),
    (lambda p: sf.write(p, np.zeros(100, np.float32), 16000), ValueError, ["too short", "100 samples"]),
    (lambda p: sf.write(p, np.full(800, np.nan, np.float32), 16000, subtype="FLOAT"), ValueError, ["NaN or Inf"]),
]


@pytest.mark.parametrize(("make", "error", "words"), BAD_FILES)
def test_bad_files_are_named_by_path(codec, tmp_path, make, error, words):
    good = tmp_path / "good.wav"
    sf.write(good, tone().numpy(), 16000)
    bad = tmp_path / "bad.wav"
    make(bad)
    with pytest.raises(error) as info:
        codec.encode_file([good, bad])
    assert str(bad) in str(info.value) and "audio[" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_a_failing_file_in_a_folder_is_named_by_its_path_and_earlier_outputs_stay_whole(codec, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):  # batches of 2: the bad file is the first of the third batch
        sf.write(src / f"clip{i}.wav", tone().numpy(), 16000, subtype="FLOAT")
    sf.write(src / "clip4.wav", np.full(8000, np.inf, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(ValueError) as info:
        compress(codec, [src], tmp_path / "tok", batch_size=2)
    assert str(src / "clip4.wav") in str(info.value) and "audio[0]" not in str(info.value)
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == [f"clip{i}.tokens.npz" for i in range(4)]
    assert not list(Path(tmp_path / "tok").glob(".*"))  # no temporary left behind


def test_too_short_and_unreadable_files_stop_compress_before_anything_is_written(codec, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", tone().numpy(), 16000)
    sf.write(src / "b.wav", np.zeros(50, np.float32), 8000)
    with pytest.raises(ValueError, match=r"'.*b.wav' is too short: 100 samples at 16000 Hz"):
        compress(codec, [src], tmp_path / "tok")
    assert not (tmp_path / "tok").exists()
