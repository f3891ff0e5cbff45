"""A ``datasets`` data set in Python -> a token folder with ``tokenize_corpus``: row order, captions,
resuming, streaming, raw arrays, input errors, and the settings object's checks."""

import warnings

import pytest
import torch

from plumbing.config_file import ConfigError
from semantilm.data.collator import row_tokens
from semantilm.data.corpus_tokens import TokenizeWarning, tokenize_corpus
from semantilm.data.token_dataset import TOKEN_COLUMNS, load_token_dataset
from semantilm.data.tokenize_settings import TokenizeSettings
from tests.semantilm.conftest import FakeCodec, make_clip


def audio_dataset(n=6, captions=None):
    from datasets import Dataset

    rows = {"audio": [{"array": make_clip(i, seconds=0.02 * (1 + i % 3)).tolist(), "sampling_rate": 16000} for i in range(n)]}
    if captions is not None:
        rows["text"] = [captions[i % len(captions)] for i in range(n)]
    return Dataset.from_dict(rows)


def tokens(data, codec, out, **fields):
    settings = TokenizeSettings(**{"num_workers": 0, **fields})
    return tokenize_corpus(data, codec, out, settings=settings, progress=False).dataset


class FlakyCodec(FakeCodec):
    """Fails on its ``fail_at``-th encode call, like a run killed in the middle."""

    def __init__(self, fail_at, **kwargs):
        super().__init__(**kwargs)
        self.fail_at = fail_at

    def encode(self, audio, sample_rate, lengths=None):
        if self.encode_calls + 1 == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return super().encode(audio, sample_rate, lengths)


def test_rows_match_the_codec_in_input_order_with_captions(tmp_path, fake_codec, captions):
    ds = audio_dataset(captions=captions)
    out = tokens(ds, fake_codec, tmp_path / "t", caption_column="text", batch_size=4)
    assert out.column_names[:5] == ["id", *TOKEN_COLUMNS, "duration"] and "caption" in out.column_names
    assert out["id"] == [str(i) for i in range(len(ds))]
    for i in range(len(ds)):
        expected = FakeCodec().encode([make_clip(i, seconds=0.02 * (1 + i % 3))], 16000).unbatch()[0]
        assert torch.equal(row_tokens(out[i]), expected)
        assert out[i]["num_frames"] == expected.shape[0] and out[i]["caption"] == captions[i]


def test_an_interrupted_run_resumes_without_loss_or_duplicates(tmp_path, captions):
    ds = audio_dataset(captions=captions)
    reference = tokens(ds, FakeCodec(), tmp_path / "reference", caption_column="text", batch_size=1)
    out = tmp_path / "t"
    with pytest.raises(KeyboardInterrupt):  # shards of 2 rows: shard 0 done, shard 1 half done
        tokens(ds, FlakyCodec(fail_at=4), out, caption_column="text", batch_size=1, shard_size=2)
    assert sorted(p.name for p in (out / "train").glob("shard-*")) == ["shard-00000.parquet"]
    codec = FakeCodec()
    resumed = tokens(ds, codec, out, caption_column="text", batch_size=1, shard_size=2)
    assert codec.encode_calls == 4  # rows 2..5 only
    assert resumed.remove_columns("duration").to_dict() == reference.remove_columns("duration").to_dict()
    again = FakeCodec()
    assert tokens(ds, again, out, caption_column="text", batch_size=1, shard_size=2).to_dict() == resumed.to_dict()
    assert again.encode_calls == 0  # every shard done
    with pytest.raises(ConfigError, match="another codec"):
        tokens(ds, FakeCodec(semantic_vocab_size=8), out, caption_column="text", batch_size=1, shard_size=2)


def test_a_streamed_dataset_gives_the_rows_of_the_whole_one(tmp_path, fake_codec, captions):
    ds = audio_dataset(captions=captions)
    reference = tokens(ds, fake_codec, tmp_path / "whole", caption_column="text", batch_size=2)
    stream = tokens(ds.to_iterable_dataset(), FakeCodec(), tmp_path / "stream", caption_column="text", batch_size=2,
                    shard_size=4)
    assert stream["semantic_ids"] == reference["semantic_ids"] and stream["caption"] == reference["caption"]


def test_bare_arrays_need_their_rate_before_any_work(tmp_path, fake_codec):
    from datasets import Dataset

    raw = Dataset.from_dict({"audio": [make_clip(0, 0.05).tolist(), make_clip(1, 0.03).tolist()]})
    with pytest.raises(ConfigError, match=r"column 'audio' .* bare arrays of samples.*sample_rate"):
        tokens(raw, fake_codec, tmp_path / "no_rate")
    assert not (tmp_path / "no_rate").exists()
    rows = tokens(raw, fake_codec, tmp_path / "t", sample_rate=16000)
    assert rows["num_frames"] == [3, 2]  # 800 and 480 samples at 320 per frame


def test_bad_columns_and_bad_audio(tmp_path, fake_codec):
    from datasets import Dataset

    with pytest.raises(ConfigError, match="audio_column 'wav' is not a column"):
        tokens(audio_dataset(), fake_codec, tmp_path / "a", audio_column="wav")
    nan = Dataset.from_dict({"audio": [make_clip(0, 0.05).tolist(), [0.1] * 400 + [float("nan")] * 400]})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        rows = tokens(nan, fake_codec, tmp_path / "b", sample_rate=16000)
    assert rows["id"] == ["0"]
    said = [str(w.message) for w in record if w.category is TokenizeWarning]
    assert len(said) == 1 and "1 of the 2 inputs" in said[0] and "failures.jsonl" in said[0] and "'1'" in said[0]
    with pytest.raises(ValueError, match=r"dataset row 1 \(column 'audio'\) cannot be tokenised: non-finite"):
        tokens(nan, fake_codec, tmp_path / "c", sample_rate=16000, on_error="stop")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("batch_size", 0, "TokenizeSettings.batch_size must be a positive integer, got 0"),
    ("shard_size", 2.5, "TokenizeSettings.shard_size must be a positive integer, got 2.5"),
    ("num_workers", -1, "TokenizeSettings.num_workers must be None or an integer >= 0, got -1"),
    ("on_error", "ignore", "TokenizeSettings.on_error must be one of ('skip', 'stop'), got 'ignore'"),
    ("dtype", "fp16", "TokenizeSettings.dtype must be one of"),
    ("dtype", "bfloat16", "TokenizeSettings.dtype='bfloat16' needs a CUDA device (device='cpu')"),
    ("device", "gpu0", "TokenizeSettings.device must be a torch device"),
    ("sample_rate", True, "TokenizeSettings.sample_rate must be None or a positive integer, got True"),
    ("audio_column", "", "TokenizeSettings.audio_column must be a non-empty text"),
    ("streaming", "yes", "TokenizeSettings.streaming must be True or False, got 'yes'"),
])
def test_settings_name_the_field_and_value(field, value, words):
    with pytest.raises(ConfigError) as info:
        TokenizeSettings(**{field: value})
    assert words in str(info.value)


def test_rank_and_world_size_are_checked(tmp_path, fake_codec):
    with pytest.raises(ConfigError, match="rank=2 and world_size=2"):
        tokenize_corpus(audio_dataset(), fake_codec, tmp_path / "t", rank=2, world_size=2)
    with pytest.raises(TypeError, match="settings must be a TokenizeSettings"):
        tokenize_corpus(audio_dataset(), fake_codec, tmp_path / "t", settings={"batch_size": 2})


def test_the_removed_names_say_what_replaces_them():
    import semantilm

    with pytest.raises(AttributeError, match=r"encode_audio_dataset was replaced: use semantilm.tokenize_corpus"):
        semantilm.encode_audio_dataset  # noqa: B018


def test_load_token_dataset_reads_a_cache_of_the_former_encode_audio_dataset(tmp_path, fake_codec):
    """Such a folder (semantilm_token_cache.json + shard-K save_to_disk folders) still loads; tokenising
    into it is refused naming it, and an unfinished one says to tokenise again."""
    import json

    from datasets import Dataset

    cache = tmp_path / "cache"
    rows = [{"semantic_ids": [i, 1], "acoustic_ids": [2, i], "num_frames": 2, "caption": f"c{i}"} for i in range(5)]
    for k in range(3):
        Dataset.from_list(rows[2 * k : 2 * k + 2]).save_to_disk(str(cache / f"shard-{k:05d}"))
    record = {"codec": {"variant": "fake-test-double"}, "num_rows": 5, "shard_size": 2, "audio_column": "audio"}
    (cache / "semantilm_token_cache.json").write_text(json.dumps(record))
    assert load_token_dataset(cache).to_list() == rows
    with pytest.raises(ConfigError, match=r"holds tokens written by an earlier version \(semantilm_token_cache.json\)"):
        tokenize_corpus(audio_dataset(), fake_codec, cache, settings=TokenizeSettings(num_workers=0))
    assert sorted(p.name for p in cache.iterdir()) == ["semantilm_token_cache.json", *[f"shard-{k:05d}" for k in range(3)]]
    with pytest.raises(ConfigError, match="already holds tokens"):
        tokenize_corpus(str(cache), fake_codec, tmp_path / "t")
    import shutil

    shutil.rmtree(cache / "shard-00002")
    with pytest.raises(ValueError, match=r"unfinished token cache .*\['shard-00002'\] are missing"):
        load_token_dataset(cache)
