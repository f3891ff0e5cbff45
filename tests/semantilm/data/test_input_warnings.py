"""Clipping warnings of the tokeniser name the input (file, data set row), not a place in a
length-sorted batch, and judge the audio as read, not the resampler's output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from tests.semantilm.data.clips import RATE, clip


@pytest.fixture(scope="module")
def codec():
    from semantilm.codec_api import load_codec

    return load_codec("tiny-random", 50, 16384, "cpu", None, decoder=False)


def audio_warnings(record) -> list[str]:
    return [str(w.message) for w in record if w.category.__name__ == "AudioWarning"]


def test_tokenize_names_the_clipping_file_and_trusts_full_scale_pcm(tmp_path, codec):
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    folder = tmp_path / "clips"
    folder.mkdir()
    t = np.arange(44100 // 2) / 44100
    square = np.sign(np.sin(2 * np.pi * 440 * t)) * 0.99997  # full-scale 16-bit: resampling overshoots it
    sf.write(folder / "full_scale.wav", square, 44100, subtype="PCM_16")
    for i in range(3):
        sf.write(folder / f"quiet{i}.wav", 0.5 * clip(i, 0.2 + 0.1 * i), RATE, subtype="FLOAT")
    loud = 0.5 * clip(7, 0.25)
    loud[100:110] = 1.5
    sf.write(folder / "loud.wav", loud, RATE, subtype="FLOAT")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tokenize_corpus(str(folder), codec, tmp_path / "t", settings=TokenizeSettings(num_workers=0, batch_size=8),
                        progress=False)
    said = audio_warnings(record)
    assert len(said) == 1, said
    assert "'loud.wav'" in said[0] and "10 samples beyond [-1, 1]" in said[0] and "audio[" not in said[0]


def test_a_dataset_row_is_named_by_its_row(codec, tmp_path):
    from datasets import Dataset

    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    cells = [{"array": 0.5 * clip(i, 0.1 + 0.02 * i), "sampling_rate": RATE} for i in range(6)]
    cells[4]["array"][5] = 2.0
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tokenize_corpus(Dataset.from_dict({"audio": cells}), codec, tmp_path / "t",
                        settings=TokenizeSettings(batch_size=6, num_workers=0), progress=False)
    said = audio_warnings(record)
    assert len(said) == 1 and "dataset row 4" in said[0] and "audio[" not in said[0], said
