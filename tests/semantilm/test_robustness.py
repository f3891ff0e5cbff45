"""Property tests for token validation and damaged / interrupted files on the LM side."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semantilm.tokens.layout import AudioTokenLayout

LAYOUT = AudioTokenLayout(text_vocab_size=10, semantic_vocab_size=12, acoustic_vocab_size=6, frame_rate=50.0)
ids = st.integers(min_value=-20, max_value=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=12))
def test_validate_tokens_raises_exactly_for_out_of_range_ids(frames):
    tokens = torch.tensor(frames, dtype=torch.long)
    valid = all(0 <= s < 12 and 0 <= a < 6 for s, a in frames)
    if valid:
        LAYOUT.validate_tokens(tokens)
        assert torch.equal(LAYOUT.deinterleave(LAYOUT.interleave(tokens[None]))[0], tokens)
    else:
        with pytest.raises(ValueError, match="outside"):
            LAYOUT.validate_tokens(tokens)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=LAYOUT.vocab_size + 5), min_size=1, max_size=20))
def test_validate_ids_raises_exactly_outside_the_vocabulary(values):
    row = torch.tensor([values], dtype=torch.long)
    if all(0 <= v < LAYOUT.vocab_size for v in values):
        LAYOUT.validate_ids(row)
    else:
        with pytest.raises(ValueError, match="outside the LM vocabulary"):
            LAYOUT.validate_ids(row)


@settings(max_examples=100, deadline=None)
@given(
    text=st.integers(min_value=-3, max_value=50),
    semantic=st.integers(min_value=-3, max_value=50),
    acoustic=st.integers(min_value=-3, max_value=50),
    rate=st.floats(min_value=-10, max_value=200) | st.just(float("nan")) | st.just(float("inf")),
)
def test_layout_construction_accepts_or_explains(text, semantic, acoustic, rate):
    try:
        layout = AudioTokenLayout(text_vocab_size=text, semantic_vocab_size=semantic, acoustic_vocab_size=acoustic,
                                  frame_rate=rate)
    except (ValueError, TypeError) as err:
        assert str(err)  # never a bare error
        return
    assert layout.vocab_size == text + len(layout.special_tokens) + semantic + acoustic
    assert AudioTokenLayout.from_dict(layout.to_dict()) == layout


def test_damaged_layout_file(tmp_path):
    path = LAYOUT.save_pretrained(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    path.write_text(path.read_text()[:30])
    with pytest.raises(ValueError, match="token layout .* is not valid JSON.*save it again"):
        AudioTokenLayout.from_pretrained(tmp_path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="holds a list"):
        AudioTokenLayout.from_pretrained(tmp_path)


def test_interrupted_layout_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = LAYOUT.save_pretrained(tmp_path)
    before = path.read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    import plumbing.io

    monkeypatch.setattr(plumbing.io.os, "replace", crash)  # interrupted after writing, before the rename
    with pytest.raises(KeyboardInterrupt):
        AudioTokenLayout(text_vocab_size=3, semantic_vocab_size=4, acoustic_vocab_size=5, frame_rate=25.0).save_pretrained(tmp_path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_interrupted_tokenisation_manifest_is_never_half_written(tmp_path, monkeypatch, fake_codec):
    from datasets import Dataset

    import plumbing.io
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    data = Dataset.from_dict({"audio": [{"array": [0.1] * 800, "sampling_rate": 16000}] * 3})
    settings = TokenizeSettings(shard_size=2, num_workers=0)

    write = plumbing.io.atomic_write

    def crash(path, payload):  # the manifest write dies half-way
        if path.name != "semantilm_tokens.json":
            return write(path, payload)
        path.with_name(path.name + ".partial").write_text(str(payload)[:5])  # what a crash mid-write would leave
        raise KeyboardInterrupt

    monkeypatch.setattr(plumbing.io, "atomic_write", crash)
    with pytest.raises(KeyboardInterrupt):
        tokenize_corpus(data, fake_codec, tmp_path / "tokens", settings=settings, progress=False)
    assert not (tmp_path / "tokens" / "semantilm_tokens.json").exists()
    monkeypatch.undo()
    calls = fake_codec.encode_calls
    tokens = tokenize_corpus(data, fake_codec, tmp_path / "tokens", settings=settings, progress=False).dataset
    assert len(tokens) == 3 and fake_codec.encode_calls == calls  # the shards were kept; only the manifest is new
