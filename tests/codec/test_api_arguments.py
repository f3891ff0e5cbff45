"""The public functions take what a caller naturally passes, or say clearly what they take: one path (a
``str`` or ``os.PathLike``) wherever a list of paths is taken, never walked character by character; and
arguments that land in the wrong positional parameter (decode settings in ``lengths``, lengths in
``sample_rate``, the paths before the codec) are a ``TypeError`` that names the right keyword."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import DecodeSettings, SemantiCodec
from codec.checkpoints import codec_for_token_files
from codec.compress import compress, decompress, find_audio_files, find_token_files, planned_outputs
from codec.eval.evaluate import evaluate_codec, file_clips
from codec.token_file import load_tokens, save_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = DecodeSettings(sampler="dpmsolver++", steps=1)


class CustomPath(os.PathLike):
    """A path type of the caller's own (not a pathlib.Path)."""

    def __init__(self, path: Path):
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


@pytest.fixture(scope="module")
def model() -> SemantiCodec:
    return SemantiCodec.from_pretrained("tiny")


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "in" / "a.wav"
    path.parent.mkdir()
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000), 16000)
    return path


@pytest.mark.parametrize("kind", [str, Path, CustomPath])
def test_one_path_is_a_list_of_one(model, clip, tmp_path, kind):
    """An absolute str starts with '/': walked by character it would search the whole file system."""
    one = kind(clip.resolve())
    assert find_audio_files(one) == [clip.resolve()]
    assert planned_outputs(one, tmp_path / "plan", "encode").targets == [tmp_path / "plan" / "a.tokens.npz"]
    tokens = compress(model, one, kind(tmp_path / "tok"))
    assert tokens == [tmp_path / "tok" / "a.tokens.npz"]
    token_file = kind(tokens[0])
    assert find_token_files(token_file) == [tokens[0]]
    assert codec_for_token_files(token_file)[0] == "tiny"
    assert decompress(model, token_file, kind(tmp_path / "wav"), FAST) == [tmp_path / "wav" / "a.wav"]
    assert [name for name, _, _ in file_clips(one)] == [str(clip.resolve())]
    assert torch.equal(model.encode_file(one).tokens, model.encode_file([clip]).tokens)
    assert torch.equal(load_tokens(tokens[0]).tokens, model.encode_file(one).tokens[0])


def test_one_folder_is_a_list_of_one(model, clip, tmp_path):
    assert compress(model, str(clip.parent), tmp_path / "tok") == [tmp_path / "tok" / "a.tokens.npz"]
    assert decompress(model, str(tmp_path / "tok"), tmp_path / "wav", FAST) == [tmp_path / "wav" / "a.wav"]


def test_what_is_not_a_path_is_named(model, clip, tmp_path):
    with pytest.raises(TypeError, match=r"paths\[1\] must be a path .*got int"):
        compress(model, [clip, 3], tmp_path / "tok")
    with pytest.raises(TypeError, match="must be a path .* or a list of paths, got bytes"):
        find_audio_files(bytes(clip))
    with pytest.raises(ValueError, match="paths is empty"):
        compress(model, [], tmp_path / "tok")
    with pytest.raises(TypeError, match="settings must be a codec.sampling.DecodeSettings, got PosixPath"):
        decompress(model, clip, FAST, tmp_path / "wav")  # settings and folder swapped
    with pytest.raises(TypeError, match="output folder must be a path .*got DecodeSettings"):
        compress(model, clip, FAST)
    assert not (tmp_path / "tok").exists() and not (tmp_path / "wav").exists()


def test_the_codec_comes_first(model, clip, tmp_path):
    with pytest.raises(TypeError, match=r"compress\(codec, \.\.\.\) takes the codec first"):
        compress(clip, model, tmp_path / "tok")
    with pytest.raises(TypeError, match=r"decompress\(codec, \.\.\.\) takes the codec first"):
        decompress(str(clip), model, tmp_path / "wav")
    record = load_tokens(compress(model, clip, tmp_path / "tok")[0])
    with pytest.raises(TypeError, match=r"save_tokens\(path, record\) takes the file first"):
        save_tokens(record, tmp_path / "x.tokens.npz")


def test_settings_in_the_lengths_parameter(model):
    tokens = model.encode(torch.randn(8000) * 0.1)
    for call in (lambda: model.decode(tokens.tokens, DecodeSettings(steps=2)),
                 lambda: model.decode(tokens, DecodeSettings(steps=2)),
                 lambda: model.decode(tokens.tokens, {"steps": 2})):
        with pytest.raises(TypeError, match="lengths got decode settings .*settings=DecodeSettings"):
            call()
    table = (model.acoustic.codebook, model.semantic.centroids)
    with pytest.raises(TypeError, match="lengths got decode settings .*settings=DecodeSettings"):
        model.decoder.decode(tokens.tokens, *table, DecodeSettings(steps=2))
    with pytest.raises(TypeError, match="metrics got decode settings .*settings=DecodeSettings"):
        evaluate_codec(model, [("a", torch.randn(8000) * 0.1, 16000)], DecodeSettings(steps=2))
    # the right keyword works, and so does one metric by name
    assert model.decode(tokens, settings=FAST).audio.shape[0] == 1
    result = evaluate_codec(model, [("a", torch.randn(8000) * 0.1, 16000)], "mel", settings=FAST)
    assert list(result.means) == ["mel"]


def test_lengths_in_the_sample_rate_parameter(model):
    batch = torch.randn(9, 8000) * 0.1  # nine mono clips, zero-padded
    lengths = [8000, 7000, 6000, 8000, 7000, 6000, 8000, 7000, 6000]
    with pytest.raises(TypeError, match="sample_rate has one value per clip .*lengths="):
        model.encode(batch, lengths)
    with pytest.raises(TypeError, match="sample_rate must be an int .*got a Tensor.*lengths="):
        model.encode(batch, torch.tensor(lengths))
    assert model.encode(batch, 16000, lengths).lengths.shape == (9,)
    assert model.encode(list(batch), [16000] * 9).lengths.shape == (9,)  # one rate per clip of a list
