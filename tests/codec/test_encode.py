"""SemantiCodec.encode on a tiny random-weight codec: shapes, batching, files, dtypes, errors."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import SemantiCodec, SemantiCodecConfig


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return SemantiCodec(SemantiCodecConfig.tiny())


def _clip(seconds, freq=440.0, rate=16000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    return 0.4 * torch.sin(2 * math.pi * freq * t) + 0.05 * torch.randn(t.numel(), generator=g)


def test_token_shapes_and_lengths(codec):
    clips = [_clip(1.0), _clip(3.3, 880), _clip(11.0, 220)]  # the last spans two segments
    out = codec.encode(clips)
    expected = [codec.config.num_frames(c.numel()) for c in clips]
    assert out.lengths.tolist() == expected
    assert out.tokens.shape == (3, max(expected), 2) and out.tokens.dtype == torch.long
    assert (out.tokens[..., 0] < codec.semantic_vocab_size).all()
    assert (out.tokens[..., 1] < codec.acoustic_vocab_size).all()
    assert out.tokens[0, expected[0]:].eq(0).all()  # padding after a clip's own length
    assert [t.shape[0] for t in out.unbatch()] == expected


def test_batched_equals_one_by_one(codec):
    clips = [_clip(2.0, 300, seed=1), _clip(12.5, 500, seed=2), _clip(0.5, 900, seed=3)]
    together = codec.encode(clips, batch_size=3).unbatch()
    for clip, tokens in zip(clips, together):
        alone = codec.encode(clip).unbatch()[0]
        assert torch.equal(alone, tokens)


def test_padded_tensor_with_lengths_equals_list(codec):
    clips = [_clip(2.0, seed=4), _clip(1.2, seed=5)]
    padded = torch.zeros(2, clips[0].numel())
    padded[0], padded[1, : clips[1].numel()] = clips[0], clips[1]
    a = codec.encode(padded, lengths=[clips[0].numel(), clips[1].numel()])
    b = codec.encode(clips)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.lengths, b.lengths)


def test_batch_size_does_not_change_tokens(codec):
    clips = [_clip(11.0, seed=6), _clip(4.0, seed=7), _clip(21.0, seed=8)]
    a = codec.encode(clips, batch_size=1)
    b = codec.encode(clips, batch_size=16)
    assert torch.equal(a.tokens, b.tokens)


def test_other_sample_rates_are_resampled(codec):
    clip16 = _clip(2.0)
    out = codec.encode(torch.zeros(44100 * 2).uniform_(-0.1, 0.1), sample_rate=44100)
    assert out.lengths.item() == codec.config.num_frames(32000)
    assert codec.encode(clip16.numpy(), sample_rate=16000).lengths.item() == codec.config.num_frames(32000)


def test_encode_file_matches_encode(codec, tmp_path):
    clip = _clip(2.5)
    path44 = tmp_path / "a.flac"
    sf.write(path44, clip.numpy(), 16000, subtype="PCM_24")
    stereo = tmp_path / "b.wav"
    sf.write(stereo, np.stack([clip.numpy(), -clip.numpy()], 1), 16000, subtype="FLOAT")
    out = codec.encode_file([path44, stereo])
    direct = codec.encode(clip)
    assert torch.equal(out.tokens[1, : out.lengths[1]], direct.tokens[0])  # first channel of the stereo file
    assert out.lengths.tolist() == [direct.lengths.item()] * 2


def test_bfloat16_encode_runs_and_mostly_agrees(codec):
    clip = _clip(3.0, seed=9)
    ref = codec.encode(clip).tokens
    low = SemantiCodec(codec.config)
    low.load_state_dict(codec.state_dict())
    low = low.to(torch.bfloat16)
    out = low.encode(clip).tokens
    assert out.shape == ref.shape
    assert (out[..., 0] == ref[..., 0]).float().mean() > 0.5


def test_padding_mask_of_a_short_clip(codec):
    """3 s of signal in a 10.24 s segment: token frames after the signal are LSTM padding."""
    fixture = np.load(__import__("pathlib").Path(__file__).parents[1] / "fixtures" / "parity_small.npz")
    wave = torch.from_numpy(fixture["short_input_wave"])
    fbank, segments = codec.fbank_segments([wave])
    assert segments == [1]
    # Last frame touching the 3 s of signal is frame 299, so the cutoff is 300/1024 of 512 frames.
    assert codec.valid_token_frames(fbank).tolist() == [math.ceil(512 * 300 / 1024)]


@pytest.mark.parametrize(
    "audio,kwargs,error,match",
    [
        (torch.zeros(0), {}, ValueError, "0 samples"),
        (torch.zeros(100), {}, ValueError, "at least 400"),
        (torch.tensor([0.1] * 1000 + [float("nan")]), {}, ValueError, "NaN or Inf"),
        (torch.tensor([0.1] * 1000 + [float("inf")]), {}, ValueError, "NaN or Inf"),
        (torch.zeros(2, 3, 1000), {}, ValueError, "must be \\[samples\\]"),
        (torch.zeros(1000, dtype=torch.int16), {}, TypeError, "floating-point"),
        (torch.zeros(1000), {"sample_rate": 0}, ValueError, "sample_rate must be a positive integer"),
        (torch.zeros(1000), {"sample_rate": -16000}, ValueError, "sample_rate must be a positive integer"),
        (torch.zeros(1000), {"sample_rate": 16000.5}, ValueError, "sample_rate must be a positive integer"),
        (torch.zeros(1000), {"batch_size": 0}, ValueError, "batch_size"),
        ([], {}, ValueError, "empty list"),
    ],
)
def test_bad_input_errors(codec, audio, kwargs, error, match):
    with pytest.raises(error, match=match):
        codec.encode(audio, **kwargs)


def test_missing_and_unreadable_files(codec, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        codec.encode_file(tmp_path / "nope.wav")
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="could not read audio file"):
        codec.encode_file(bad)
    with pytest.raises(ValueError, match="paths is empty"):
        codec.encode_file([])
