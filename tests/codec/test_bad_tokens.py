"""Bad token arrays and token files: ``save_tokens`` writes nothing for a bad record (and leaves an existing file
as it was), ``load_tokens`` refuses damaged files naming them, and the decode entry points name the shape
they got and the one they expect."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch

from codec import DecodeSettings, SemantiCodec
from codec.compress import decompress
from codec.token_file import TokenFile, check_token_array, load_tokens, save_tokens


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def good(**changes) -> TokenFile:
    """10 frames at 100 tokens/s (50 frames/s): they decode to 3200 samples of 16 kHz audio."""
    record = TokenFile(torch.arange(20).reshape(10, 2) % 64, "tiny-r100", 100, 64, 256, 3000, 16000, "x.wav")
    return dataclasses.replace(record, **changes)


BAD_RECORDS = [
    # (changes, error type, words the message must hold)
    ({"tokens": torch.rand(10, 2) * 5}, TypeError, ["tokens", "integer token ids", "torch.float32"]),
    ({"tokens": torch.ones(10, 2, dtype=torch.float64)}, TypeError, ["integer token ids", "float64"]),
    ({"tokens": torch.ones(10, 2, dtype=torch.bool)}, TypeError, ["integer token ids", "torch.bool"]),
    ({"tokens": torch.full((10, 2), 64)}, ValueError, ["semantic ids in [64, 64]", "outside [0, 64)"]),
    ({"tokens": torch.tensor([[1, 256]] * 10)}, ValueError, ["acoustic ids in [256, 256]", "outside [0, 256)"]),
    ({"tokens": torch.tensor([[-1, 3]] * 10)}, ValueError, ["semantic ids in [-1, -1]"]),
    ({"tokens": torch.zeros(20, dtype=torch.long)}, ValueError, ["must be [T, 2]", "got shape (20,)"]),
    ({"tokens": torch.zeros(10, 3, dtype=torch.long)}, ValueError, ["must be [T, 2]", "got shape (10, 3)"]),
    ({"tokens": torch.zeros(1, 10, 2, dtype=torch.long)}, ValueError, ["(1, 10, 2)", "one clip per file"]),
    ({"tokens": torch.zeros(0, 2, dtype=torch.long)}, ValueError, ["no frames", "(0, 2)"]),
    ({"tokens": [[1, 2]]}, TypeError, ["integer tensor [T, 2]", "list"]),
    ({"num_samples": -5}, ValueError, ["num_samples must be a positive integer", "-5"]),
    ({"num_samples": 0}, ValueError, ["num_samples must be a positive integer", "0"]),
    ({"num_samples": 3000.5}, ValueError, ["num_samples must be a positive integer", "3000.5"]),
    ({"num_samples": 4000}, ValueError, ["num_samples=4000 does not fit 10 frames", "3200 samples"]),
    ({"num_samples": 100}, ValueError, ["num_samples=100 does not fit 10 frames", "between 320 and 3200"]),
    ({"token_rate": 0}, ValueError, ["token_rate must be a positive integer", "0"]),
    ({"semantic_vocab_size": 0}, ValueError, ["semantic_vocab_size must be a positive integer"]),
    ({"acoustic_vocab_size": True}, ValueError, ["acoustic_vocab_size must be a positive integer", "True"]),
    ({"source_sample_rate": -44100}, ValueError, ["source_sample_rate must be a positive integer"]),
    ({"codec_variant": ""}, ValueError, ["codec_variant must be a non-empty str"]),
]


@pytest.mark.parametrize(("changes", "error", "words"), BAD_RECORDS)
def test_save_tokens_refuses_a_bad_record_and_writes_nothing(tmp_path, changes, error, words):
    existing = save_tokens(tmp_path / "x.tokens.npz", good())
    before = existing.read_bytes()
    with pytest.raises(error) as info:
        save_tokens(existing, good(**changes))
    assert type(info.value) is error and str(existing) in str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert existing.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.tokens.npz"]


def written(path, tokens, meta) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, tokens=tokens, meta=np.array(json.dumps(meta)))
    path.write_bytes(buffer.getvalue())


META = {**good().meta()}
BAD_FILES = [
    # (tokens stored, meta changes, words the message must hold)
    (np.arange(20, dtype=np.float64).reshape(10, 2), {}, ["holds float64 tokens", "integers"]),
    (np.full((10, 2), 0.5, np.float32), {}, ["holds float32 tokens"]),
    (np.zeros((10, 2), np.int32), {"num_samples": -5}, ["num_samples must be a positive integer", "-5"]),
    (np.zeros((10, 2), np.int32), {"num_samples": 10**6}, ["num_samples=1000000 does not fit 10 frames"]),
    (np.zeros((10, 3), np.int32), {}, ["must be [T, 2]", "(10, 3)"]),
    (np.zeros(20, np.int32), {}, ["must be [T, 2]", "(20,)"]),
    (np.full((10, 2), 999, np.int32), {}, ["semantic ids in [999, 999]", "outside [0, 64)"]),
    (np.zeros((10, 2), np.int32), {"token_rate": None}, ["lacks ['token_rate']", "encode it again"]),
    (np.zeros((10, 2), np.int32), {"version": 99}, ["version 99", "reads up to 1"]),
    (np.zeros((10, 2), np.int32), {"format": "other"}, ["is not a semantilm-tokens file", "'other'"]),
]


@pytest.mark.parametrize(("tokens", "changes", "words"), BAD_FILES)
def test_load_tokens_refuses_damaged_files_naming_them(tmp_path, tokens, changes, words):
    path = tmp_path / "bad.tokens.npz"
    meta = {k: v for k, v in {**META, **changes}.items() if v is not None}
    written(path, tokens, meta)
    with pytest.raises(ValueError) as info:
        load_tokens(path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_check_token_array_names_what_it_got():
    assert check_token_array(np.array([[1, 2]], np.int16)).dtype == torch.long
    with pytest.raises(ValueError, match=r"prompt must be \[T, 2\].*got shape \(4,\)"):
        check_token_array(torch.zeros(4, dtype=torch.long), "prompt")


@pytest.fixture(scope="module")
def decoder_codec():
    return SemantiCodec.tiny_random(100, with_decoder=True)


BAD_DECODE = [
    # (tokens, keyword arguments, error type, words the message must hold)
    (torch.zeros(10, dtype=torch.long), {}, ValueError, ["[B, T, 2]", "(10,)"]),
    (torch.zeros(1, 10, 3, dtype=torch.long), {}, ValueError, ["[B, T, 2]", "(1, 10, 3)"]),
    (torch.zeros(1, 10, 2), {}, TypeError, ["integer ids", "float32"]),
    (torch.zeros(1, 0, 2, dtype=torch.long), {}, ValueError, ["empty", "(1, 0, 2)"]),
    (torch.full((1, 10, 2), 10**6), {}, ValueError, ["semantic token ids must be in [0, "]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"lengths": [0]}, ValueError, ["lengths must be between 1 and T=10"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"lengths": [11]}, ValueError, ["lengths must be between 1 and T=10"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"cfg_scale": float("nan")}, ValueError, ["cfg_scale", "nan"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"cfg_scale": -1.0}, ValueError, ["cfg_scale must be >= 0"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"steps": 0}, ValueError, ["steps=0", "between 1 and 1000"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"steps": 1001}, ValueError, ["steps=1001"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"sampler": "heun9"}, ValueError, ["sampler='heun9'"]),
    (torch.zeros(1, 10, 2, dtype=torch.long), {"batch_size": 0}, ValueError, ["batch_size", "0"]),
]


@pytest.mark.parametrize(("tokens", "kwargs", "error", "words"), BAD_DECODE)
def test_decode_names_the_shape_it_got_and_the_one_it_expects(decoder_codec, tokens, kwargs, error, words):
    kwargs = dict(kwargs)
    fields = {k: kwargs.pop(k) for k in ("steps", "sampler", "cfg_scale", "eta") if k in kwargs}
    with pytest.raises(error) as info:  # a bad sampler field is refused where DecodeSettings is made
        decoder_codec.decode(tokens, settings=DecodeSettings(**fields), **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_decompress_checks_every_file_before_writing_any(decoder_codec, tmp_path):
    folder = tmp_path / "tok"
    save_tokens(folder / "a.tokens.npz", good(codec_variant=decoder_codec.variant, semantic_vocab_size=8,
                                              tokens=torch.zeros(10, 2, dtype=torch.long)))
    written(folder / "b.tokens.npz", np.zeros((10, 2), np.float64), {**META, "codec_variant": decoder_codec.variant})
    with pytest.raises(ValueError, match=r"'.*b.tokens.npz' holds float64 tokens"):
        decompress(decoder_codec, [folder], tmp_path / "wav", batch_size=1)
    assert not (tmp_path / "wav").exists()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got -1"):
        decompress(decoder_codec, [folder], tmp_path / "wav", batch_size=-1)
