"""A bad row of an audio data set is named by its row number in the data set (not its place in a
length-sorted batch), whether the audio itself is bad or only the codec refuses it: a failure record
with ``on_error="skip"``, a ``TokenizeError`` with ``on_error="stop"`` that leaves the shards before
it whole."""

from __future__ import annotations

import json
import math

import pytest
import torch

from semantilm.data.corpus_tokens import TokenizeWarning, tokenize_corpus
from semantilm.data.pipeline import TokenizeError
from semantilm.data.tokenize_settings import TokenizeSettings
from tests.semantilm.conftest import FakeCodec, make_clip


class PickyCodec(FakeCodec):
    """Refuses clips of exactly ``bad_length`` samples (of a padded batch: by its lengths), like a codec
    with its own limits."""

    def __init__(self, bad_length: int):
        super().__init__()
        self.bad_length = bad_length

    def encode(self, audio, sample_rate, lengths=None):
        sizes = lengths.tolist() if lengths is not None else [torch.as_tensor(a).numel() for a in audio]
        if self.bad_length in sizes:
            raise ValueError(f"clip of {self.bad_length} samples is not supported")
        return super().encode(audio, sample_rate, lengths)


def dataset(n: int, bad_row: int, bad: list | None):
    from datasets import Dataset

    cells = [{"array": make_clip(i, seconds=0.05).tolist(), "sampling_rate": 16000} for i in range(n)]
    if bad is not None:
        cells[bad_row] = {"array": bad, "sampling_rate": 16000}
    return Dataset.from_dict({"audio": cells})


def run(data, codec, out, on_error):
    settings = TokenizeSettings(batch_size=4, shard_size=10, num_workers=0, on_error=on_error)
    return tokenize_corpus(data, codec, out, settings=settings, progress=False)


CASES = [
    # (bad cell, the start of its failure reason)
    ([], "empty"),
    ([0.1] * 500 + [math.nan] * 500, "non-finite"),
    ([0.1] * 999 + [math.inf], "non-finite"),
    ([0.1] * 100, "too short"),
]


@pytest.mark.parametrize(("bad", "reason"), CASES)
def test_a_bad_row_is_named_by_its_row(tmp_path, fake_codec, bad, reason):
    data = dataset(24, 21, bad)
    with pytest.raises(TokenizeError) as info:
        run(data, fake_codec, tmp_path / "stop", "stop")
    message = str(info.value)
    assert f"dataset row 21 (column 'audio') cannot be tokenised: {reason}" in message and "audio[" not in message
    kept = sorted(p.name for p in (tmp_path / "stop" / "train").iterdir())
    assert kept == ["shard-00000.parquet", "shard-00001.parquet"]  # the shard holding it is not written

    with pytest.warns(TokenizeWarning, match="1 of the 24 inputs"):
        result = run(data, fake_codec, tmp_path / "skip", "skip")
    assert result.manifest["rows"] == 23 and result.manifest["inputs"] == 24
    (failure,) = [json.loads(line) for line in (tmp_path / "skip" / "failures.jsonl").read_text().splitlines()]
    assert failure["id"] == "21" and failure["reason"].startswith(reason) and failure["shard"] == 2


@pytest.mark.parametrize("streamed", [False, True])
def test_a_row_only_the_codec_refuses_is_named_alone(tmp_path, streamed):
    data = dataset(12, 7, [0.05] * 333)  # the shortest clip: batched with three others of 800 samples
    source = data.to_iterable_dataset() if streamed else data
    with pytest.raises(TokenizeError, match=r"^input dataset row 7 \(column 'audio'\) cannot be tokenised: codec "
                                            r"error: clip of 333 samples"):
        run(source, PickyCodec(333), tmp_path / "stop", "stop")
    with pytest.warns(TokenizeWarning, match="1 of the 12 inputs"):
        result = run(source, PickyCodec(333), tmp_path / "skip", "skip")
    assert result.manifest["rows"] == 11
    (failure,) = [json.loads(line) for line in (tmp_path / "skip" / "failures.jsonl").read_text().splitlines()]
    assert failure["id"] == "7" and "clip of 333 samples" in failure["reason"]
