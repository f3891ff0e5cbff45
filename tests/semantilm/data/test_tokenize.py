"""Audio datasets -> token rows: order, resumable shards, streaming, input errors."""

import pytest
import torch

from semantilm.data.collator import row_tokens
from semantilm.data.tokenize import encode_audio_dataset, encode_audio_stream
from tests.semantilm.conftest import FakeCodec, make_clip


def audio_dataset(n=6, captions=None):
    from datasets import Dataset

    rows = {"audio": [{"array": make_clip(i, seconds=0.02 * (1 + i % 3)).tolist(), "sampling_rate": 16000} for i in range(n)]}
    if captions is not None:
        rows["text"] = [captions[i % len(captions)] for i in range(n)]
    return Dataset.from_dict(rows)


class FlakyCodec(FakeCodec):
    """Fails on its ``fail_at``-th encode call, like a run killed in the middle."""

    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at

    def encode(self, audio, sample_rate, lengths=None):
        if self.encode_calls + 1 == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return super().encode(audio, sample_rate, lengths)


def test_encode_matches_codec_and_keeps_order(fake_codec, captions):
    ds = audio_dataset(captions=captions)
    out = encode_audio_dataset(ds, fake_codec, caption_column="text", batch_size=4)
    assert out.column_names == ["semantic_ids", "acoustic_ids", "num_frames", "caption"]
    for i in range(len(ds)):
        expected = fake_codec.encode([make_clip(i, seconds=0.02 * (1 + i % 3))], 16000).unbatch()[0]
        assert torch.equal(row_tokens(out[i]), expected)
        assert out[i]["num_frames"] == expected.shape[0] and out[i]["caption"] == captions[i]


def test_interrupted_encoding_resumes_without_loss_or_duplicates(tmp_path, captions):
    ds = audio_dataset(captions=captions)
    reference = encode_audio_dataset(ds, FakeCodec(), caption_column="text", batch_size=1)
    flaky = FlakyCodec(fail_at=4)  # shards of 2 rows: shard 0 done, shard 1 half done
    with pytest.raises(KeyboardInterrupt):
        encode_audio_dataset(ds, flaky, caption_column="text", batch_size=1, cache_dir=tmp_path, shard_size=2)
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-00000"]
    codec = FakeCodec()
    resumed = encode_audio_dataset(ds, codec, caption_column="text", batch_size=1, cache_dir=tmp_path, shard_size=2)
    assert codec.encode_calls == 4  # rows 2..5 only
    assert resumed.to_dict() == reference.to_dict()
    again = FakeCodec()
    assert encode_audio_dataset(ds, again, caption_column="text", batch_size=1, cache_dir=tmp_path, shard_size=2).to_dict() == reference.to_dict()
    assert again.encode_calls == 0  # fully cached
    other = FakeCodec(semantic_vocab_size=8)
    with pytest.raises(ValueError, match="different"):
        encode_audio_dataset(ds, other, caption_column="text", batch_size=1, cache_dir=tmp_path, shard_size=2)


def test_streaming_matches_map(fake_codec, captions):
    ds = audio_dataset(captions=captions)
    reference = encode_audio_dataset(ds, fake_codec, caption_column="text", batch_size=2)
    stream = encode_audio_stream(ds.to_iterable_dataset(), FakeCodec(), caption_column="text", batch_size=2)
    rows = list(stream)
    assert [r["semantic_ids"] for r in rows] == reference["semantic_ids"]
    assert [r["caption"] for r in rows] == reference["caption"]


def test_bad_columns_and_audio(fake_codec):
    from datasets import Dataset

    ds = audio_dataset()
    with pytest.raises(ValueError, match="audio_column='wav'"):
        encode_audio_dataset(ds, fake_codec, audio_column="wav")
    raw = Dataset.from_dict({"audio": [[0.1, 0.2, 0.3]]})
    with pytest.raises(ValueError, match="sample_rate"):
        encode_audio_dataset(raw, fake_codec)
    assert encode_audio_dataset(raw, fake_codec, sample_rate=16000)[0]["num_frames"] == 1
    nan = Dataset.from_dict({"audio": [[0.1, float("nan")]]})
    with pytest.raises(ValueError, match="NaN"):
        encode_audio_dataset(nan, fake_codec, sample_rate=16000)
