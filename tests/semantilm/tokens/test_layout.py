import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semantilm.tokens.layout import LAYOUT_FILE, AudioTokenLayout, LayoutNotFoundError

PATTERNS = ["interleave", "semantic_first"]


def make_layout(pattern="interleave", **kw):
    args = dict(text_vocab_size=10, semantic_vocab_size=7, acoustic_vocab_size=5, pattern=pattern)
    args.update(kw)
    return AudioTokenLayout(**args)


@st.composite
def token_batches(draw):
    v_s = draw(st.integers(1, 50))
    v_a = draw(st.integers(1, 50))
    batch = draw(st.integers(1, 4))
    frames = draw(st.integers(1, 12))
    sem = draw(st.lists(st.integers(0, v_s - 1), min_size=batch * frames, max_size=batch * frames))
    aco = draw(st.lists(st.integers(0, v_a - 1), min_size=batch * frames, max_size=batch * frames))
    lengths = draw(st.lists(st.integers(0, frames), min_size=batch, max_size=batch))
    tokens = torch.stack([torch.tensor(sem), torch.tensor(aco)], -1).reshape(batch, frames, 2)
    return v_s, v_a, tokens, torch.tensor(lengths)


def test_offsets_follow_design():
    layout = make_layout()
    assert layout.special_offset == 10
    assert [layout.audio_start_id, layout.audio_end_id, layout.pad_id] == [10, 11, 12]
    assert layout.semantic_offset == 13
    assert layout.acoustic_offset == 13 + 7
    assert layout.vocab_size == 13 + 7 + 5
    assert layout.new_token_ids() == list(range(10, 25))


def test_interleave_order():
    tokens = torch.tensor([[[1, 2], [3, 4]]])
    lay = make_layout()
    assert lay.interleave(tokens).tolist() == [[13 + 1, 20 + 2, 13 + 3, 20 + 4]]
    lay = make_layout("semantic_first")
    assert lay.interleave(tokens).tolist() == [[13 + 1, 13 + 3, 20 + 2, 20 + 4]]


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=60, deadline=None)
@given(data=token_batches())
def test_round_trip_property(pattern, data):
    v_s, v_a, tokens, lengths = data
    layout = AudioTokenLayout(text_vocab_size=3, semantic_vocab_size=v_s, acoustic_vocab_size=v_a, pattern=pattern)
    ids = layout.interleave(tokens, lengths)
    assert ids.shape == (tokens.shape[0], 2 * tokens.shape[1])
    pos = torch.arange(ids.shape[1])
    assert bool((ids[pos >= 2 * lengths.unsqueeze(1)] == layout.pad_id).all())
    back = layout.deinterleave(ids, 2 * lengths)
    mask = torch.arange(tokens.shape[1]) < lengths.unsqueeze(1)
    assert torch.equal(back[mask], tokens[mask])
    assert bool((back[~mask] == 0).all())
    # Unbatched, full length: exact inverse, and span_to_tokens agrees.
    for row in tokens:
        flat = layout.interleave(row)
        assert torch.equal(layout.deinterleave(flat), row)
        assert torch.equal(layout.span_to_tokens(flat), row)


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=40, deadline=None)
@given(data=token_batches(), cut=st.integers(0, 30))
def test_truncated_span_keeps_whole_frames(pattern, data, cut):
    v_s, v_a, tokens, _ = data
    layout = AudioTokenLayout(text_vocab_size=3, semantic_vocab_size=v_s, acoustic_vocab_size=v_a, pattern=pattern)
    row = tokens[0]
    span = layout.interleave(row)[: max(0, span_len := 2 * row.shape[0]) - min(cut, span_len)]
    out = layout.span_to_tokens(span)
    assert out.ndim == 2 and out.shape[1] == 2
    if pattern == "interleave":
        assert torch.equal(out, row[: out.shape[0]])
    else:  # the frames whose acoustic id was written
        assert out.shape[0] == max(0, span.numel() - row.shape[0])
        assert torch.equal(out, row[: out.shape[0]])


@pytest.mark.parametrize("pattern", PATTERNS)
def test_deinterleave_rejects_misplaced_ids(pattern):
    layout = make_layout(pattern)
    ids = layout.interleave(torch.tensor([[1, 2], [3, 4]]))
    swapped = ids.flip(0)
    with pytest.raises(ValueError, match="is not a semantic id"):
        layout.deinterleave(swapped)
    with pytest.raises(ValueError, match="whole frames"):
        layout.deinterleave(ids[:3])
    with pytest.raises(ValueError, match="not a"):
        layout.deinterleave(torch.tensor([0, 1]))  # text ids


def test_out_of_range_tokens_raise():
    layout = make_layout()
    with pytest.raises(ValueError, match="semantic id 7 outside"):
        layout.interleave(torch.tensor([[7, 0]]))
    with pytest.raises(ValueError, match="acoustic id -1 outside"):
        layout.interleave(torch.tensor([[0, -1]]))
    with pytest.raises(TypeError, match="integer ids"):
        layout.interleave(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"shape \[T, 2\]"):
        layout.interleave(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="outside the LM vocabulary"):
        layout.validate_ids(torch.tensor([0, layout.vocab_size]))


def test_construction_errors():
    with pytest.raises(ValueError, match="pattern='zigzag'"):
        make_layout("zigzag")
    with pytest.raises(ValueError, match="semantic_vocab_size must be positive"):
        make_layout(semantic_vocab_size=0)
    with pytest.raises(TypeError, match="text_vocab_size must be an int"):
        make_layout(text_vocab_size=3.0)
    with pytest.raises(ValueError, match="lacks the required"):
        make_layout(special_tokens=("<|audio_start|>",))


def test_allowed_next_interleave_and_semantic_first():
    lay = make_layout()
    n = lambda *v: torch.tensor(v)  # noqa: E731
    s, a, e = lay.allowed_next(n(0, 1, 2, 3), n(0, 0, 2, 3), n(3))
    assert s.tolist() == [True, False, True, False]
    assert a.tolist() == [False, True, False, False]
    assert e.tolist() == [False, False, True, True]
    lay = make_layout("semantic_first")
    s, a, e = lay.allowed_next(n(0, 2, 3, 3, 3), n(0, 0, 0, 1, 3), n(3))
    assert s.tolist() == [True, True, False, False, False]
    assert a.tolist() == [False, True, True, True, False]
    assert e.tolist() == [False, False, False, False, True]


def test_save_load_and_missing_file(tmp_path, fake_codec):
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=100, pattern="semantic_first")
    path = layout.save_pretrained(tmp_path)
    assert path.name == LAYOUT_FILE
    data = json.loads(path.read_text())
    assert data["codec_variant"] == "fake-test-double" and data["offsets"]["semantic"] == 103
    assert AudioTokenLayout.from_pretrained(tmp_path) == layout
    data["offsets"]["semantic"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="disagree"):
        AudioTokenLayout.from_pretrained(tmp_path)
    with pytest.raises(LayoutNotFoundError, match="has no semantilm_config.json"):
        AudioTokenLayout.from_pretrained(tmp_path / "nothing")
    with pytest.raises(ValueError):  # also a ValueError, as the errors policy asks
        AudioTokenLayout.from_pretrained(tmp_path / "nothing")


def test_codec_mismatch(fake_codec):
    from tests.semantilm.conftest import FakeCodec

    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=20)
    layout.check_codec(fake_codec)
    with pytest.raises(ValueError, match="semantic_vocab_size: layout 16, codec 32"):
        layout.check_codec(FakeCodec(semantic_vocab_size=32))
    other = FakeCodec()
    other.variant = "another"
    with pytest.raises(ValueError, match="variant"):
        layout.check_codec(other)
    layout.check_codec(other, check_variant=False)
    with pytest.raises(TypeError, match="missing"):
        layout.check_codec(object())
