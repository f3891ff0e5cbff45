"""A bad row of an audio data set is named by its row number in the data set (not its place in a batch), with
or without cached shards, whether the audio itself is bad or only the codec refuses it."""

from __future__ import annotations

import math

import pytest
import torch

from semantilm.data.tokenize import encode_audio_dataset, encode_audio_stream
from tests.semantilm.conftest import FakeCodec, make_clip


class PickyCodec(FakeCodec):
    """Refuses clips of exactly ``bad_length`` samples, like a codec with its own limits."""

    def __init__(self, bad_length: int):
        super().__init__()
        self.bad_length = bad_length

    def encode(self, audio, sample_rate, lengths=None):
        if any(torch.as_tensor(a).numel() == self.bad_length for a in audio):
            raise ValueError(f"clip of {self.bad_length} samples is not supported")
        return super().encode(audio, sample_rate, lengths)


def dataset(n: int, bad_row: int, bad: list | None):
    from datasets import Dataset

    cells = [{"array": make_clip(i, seconds=0.05).tolist(), "sampling_rate": 16000} for i in range(n)]
    if bad is not None:
        cells[bad_row] = {"array": bad, "sampling_rate": 16000}
    return Dataset.from_dict({"audio": cells})


CASES = [
    # (bad cell, words the message must hold)
    ([], ["dataset row 21 (column 'audio')", "non-empty clip"]),
    ([0.1] * 50 + [math.nan] * 50, ["dataset row 21 (column 'audio')", "NaN or Inf"]),
    ([0.1] * 99 + [math.inf], ["dataset row 21 (column 'audio')", "NaN or Inf"]),
]


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize(("bad", "words"), CASES)
def test_a_bad_row_is_named_by_its_row(tmp_path, fake_codec, cache, bad, words):
    ds = dataset(24, 21, bad)
    options = dict(cache_dir=tmp_path, shard_size=10) if cache else {}
    with pytest.raises((ValueError, TypeError)) as info:
        encode_audio_dataset(ds, fake_codec, batch_size=4, **options)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert "audio[" not in message
    if cache:  # the shards before the bad row are kept whole, the one holding it is not written
        assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-00000", "shard-00001"]


def test_a_row_only_the_codec_refuses_is_named_too(tmp_path):
    ds = dataset(12, 7, [0.05] * 333)
    with pytest.raises(ValueError, match=r"dataset row 7 \(column 'audio'\) cannot be encoded: clip of 333 samples"):
        encode_audio_dataset(ds, PickyCodec(333), batch_size=4)
    stream = encode_audio_stream(ds.to_iterable_dataset(), PickyCodec(333), batch_size=4)
    with pytest.raises(ValueError, match=r"dataset row 7 \(column 'audio'\)"):
        list(stream)
