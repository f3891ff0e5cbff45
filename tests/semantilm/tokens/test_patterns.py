import pytest
import torch

from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.generation.prompts import continuation_prompts
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import generate_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.patterns import (
    PATTERNS,
    InterleavePattern,
    SemanticFirstPattern,
    TokenPattern,
    pattern_for,
)
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=96)
S, A = 13, 20  # semantic and acoustic offsets of make_layout()


def make_layout(pattern="interleave"):
    return AudioTokenLayout(text_vocab_size=10, semantic_vocab_size=7, acoustic_vocab_size=5, pattern=pattern)


class AcousticFirstPattern(TokenPattern):
    """A third pattern, defined here only: ``a_0 ... a_{T-1} s_0 ... s_{T-1}``."""

    name = "acoustic_first"

    def positions(self, frames, length):
        pos = torch.arange(length).expand(frames.shape[0], -1)
        acoustic = pos < frames
        return ~acoustic, torch.where(acoustic, pos, pos - frames)

    def allowed_next(self, n_semantic, n_acoustic, max_frames, min_frames):
        semantic_ok = (n_acoustic > n_semantic) & (n_acoustic >= min_frames)
        acoustic_ok = (n_semantic == 0) & (n_acoustic < max_frames)
        end_ok = (n_semantic == n_acoustic) & (n_semantic >= min_frames)
        return semantic_ok, acoustic_ok, end_ok

    def complete_frames(self, layout, span):
        n_aco = int(layout.is_acoustic(span).long().cumprod(0).sum())
        n_sem = min(span.numel() - n_aco, n_aco)
        return torch.cat([span[:n_sem], span[n_aco : n_aco + n_sem]])

    def continuation_ids(self, layout, tokens):
        return self.build(layout, tokens)[: tokens.shape[0]]


@pytest.fixture
def acoustic_first(monkeypatch):
    monkeypatch.setitem(PATTERNS, AcousticFirstPattern.name, AcousticFirstPattern)
    return make_layout("acoustic_first")


@pytest.fixture
def sp(sp_model_path):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=sp_model_path)


# ----- registry ----------------------------------------------------------------------------
def test_registry_names_and_unknown_pattern():
    assert PATTERNS == {"interleave": InterleavePattern, "semantic_first": SemanticFirstPattern}
    assert isinstance(pattern_for("semantic_first"), SemanticFirstPattern)
    assert isinstance(make_layout().token_pattern, InterleavePattern)
    for bad in ("zigzag", None, ["interleave"]):
        with pytest.raises(ValueError, match=r"is not supported; use one of \('interleave', 'semantic_first'\)"):
            pattern_for(bad)
    with pytest.raises(ValueError, match="pattern='acoustic_first' is not supported"):
        make_layout("acoustic_first")  # not registered outside the test that registers it


# ----- build / revert ----------------------------------------------------------------------
TOKENS = torch.tensor([[[1, 2], [3, 4], [5, 0]], [[6, 1], [0, 3], [0, 0]]])  # [2, 3, 2], row 1 has 2 frames
LENGTHS = torch.tensor([3, 2])
P = 12  # pad id


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("interleave", [[S + 1, A + 2, S + 3, A + 4, S + 5, A + 0], [S + 6, A + 1, S + 0, A + 3, P, P]]),
        ("semantic_first", [[S + 1, S + 3, S + 5, A + 2, A + 4, A + 0], [S + 6, S + 0, A + 1, A + 3, P, P]]),
    ],
)
def test_build_and_revert_with_lengths_and_padding(pattern, expected):
    layout = make_layout(pattern)
    ids = layout.interleave(TOKENS, LENGTHS)
    assert ids.tolist() == expected
    assert torch.equal(layout.token_pattern.build(layout, TOKENS, LENGTHS), ids)
    back = layout.deinterleave(ids, 2 * LENGTHS)
    assert torch.equal(back, TOKENS)  # the padding frame of row 1 comes back as zeros
    for row, n in zip(TOKENS, LENGTHS.tolist()):
        assert torch.equal(layout.span_to_tokens(layout.interleave(row[:n])), row[:n])
    assert layout.interleave(torch.zeros(2, 0, 2, dtype=torch.long)).shape == (2, 0)
    assert layout.deinterleave(torch.zeros(0, dtype=torch.long)).shape == (0, 2)


@pytest.mark.parametrize("pattern", ["interleave", "semantic_first"])
def test_revert_errors_name_the_position_and_the_pattern(pattern):
    layout = make_layout(pattern)
    ids = layout.interleave(TOKENS[0])
    with pytest.raises(ValueError, match=f"ids\\[0, 5\\] = 13 is not a acoustic id; in the '{pattern}' pattern"):
        layout.deinterleave(torch.cat([ids[:5], torch.tensor([S])]))
    with pytest.raises(ValueError, match=f"ids\\[0, 0\\] = {A + 2} is not a semantic id; in the '{pattern}' pattern"):
        layout.deinterleave(torch.cat([torch.tensor([A + 2]), ids[1:]]))
    with pytest.raises(ValueError, match="lengths must be even"):
        layout.deinterleave(ids, torch.tensor([3]))


# ----- generation rules ----------------------------------------------------------------------
def walk(layout, ids, max_frames, min_frames=1):
    """allowed_next at every position of ``ids`` (one span), and after it."""
    n_sem = n_aco = torch.zeros(1, dtype=torch.long)
    steps = []
    for i in [*ids.tolist(), None]:
        s, a, e = layout.allowed_next(n_sem, n_aco, max_frames, min_frames)
        steps.append("".join(k for k, ok in zip("sae", (s, a, e)) if bool(ok)))
        if i is not None:
            n_sem = n_sem + int(layout.is_semantic(torch.tensor(i)))
            n_aco = n_aco + int(layout.is_acoustic(torch.tensor(i)))
    return steps


def test_allowed_next_sequences():
    clip = TOKENS[0]
    lay = make_layout("interleave")
    assert walk(lay, lay.interleave(clip), max_frames=3) == ["s", "a", "se", "a", "se", "a", "e"]
    assert walk(lay, lay.interleave(clip), max_frames=4, min_frames=2) == ["s", "a", "s", "a", "se", "a", "se"]
    lay = make_layout("semantic_first")
    assert walk(lay, lay.interleave(clip), max_frames=3) == ["s", "sa", "sa", "a", "a", "a", "e"]
    assert walk(lay, lay.interleave(clip), max_frames=5, min_frames=3) == ["s", "s", "s", "sa", "a", "a", "e"]


@pytest.mark.parametrize(
    "pattern, frames_kept", [("interleave", [0, 0, 1, 1, 2, 2, 3]), ("semantic_first", [0, 0, 0, 0, 1, 2, 3])]
)
def test_truncated_spans_keep_whole_frames(pattern, frames_kept):
    layout = make_layout(pattern)
    ids = layout.interleave(TOKENS[0])
    kept = [layout.span_to_tokens(ids[:cut]) for cut in range(7)]
    assert [k.shape[0] for k in kept] == frames_kept
    assert all(torch.equal(k, TOKENS[0, : k.shape[0]]) for k in kept)


def test_prompt_check():
    layout = make_layout("interleave")
    ids = layout.interleave(TOKENS[0])
    layout.check_prompt_span(ids[:4])
    with pytest.raises(ValueError, match=r"prompts\[2\] ends inside a frame"):
        layout.check_prompt_span(ids[:3], "prompts[2]")
    with pytest.raises(ValueError, match="prompt has id 20 at position 0 of its audio span, where the 'interleave'"):
        layout.check_prompt_span(ids.flip(0)[:2])
    layout = make_layout("semantic_first")
    layout.check_prompt_span(layout.interleave(TOKENS[0])[:2])  # semantic ids only
    layout.check_prompt_span(layout.interleave(TOKENS[0])[:4])  # and the first acoustic one
    for bad in ([A + 1, S + 1], [S + 1, A + 1, S + 2], [S + 1, A + 1, A + 2], [S + 1, 3]):
        with pytest.raises(ValueError, match="'semantic_first' pattern allows no such id"):
            layout.check_prompt_span(torch.tensor(bad))


# ----- continuation prompts ------------------------------------------------------------------
@pytest.mark.parametrize(
    "pattern, audio_ids",
    [
        ("interleave", lambda layout, clip: layout.interleave(clip).tolist()),
        ("semantic_first", lambda layout, clip: (clip[:, 0] + layout.semantic_offset).tolist()),
    ],
)
def test_continuation_prompts(sp, fake_codec, pattern, audio_ids):
    clips = [TOKENS[0], TOKENS[1, :2]]
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size(), pattern=pattern)
    tok = AudioTextTokenizer(sp, layout)
    prompts, frames = continuation_prompts(tok, clips)
    assert frames == [3, 2]
    start = tok.text_prompt(None)
    assert start[-1] == layout.audio_start_id
    assert prompts == [start + audio_ids(layout, clip) for clip in clips]
    assert prompts == [tok.continuation_prompt(clip) for clip in clips]


# ----- a third pattern is one class ----------------------------------------------------------
def test_third_pattern_through_the_layout(acoustic_first):
    layout = acoustic_first
    ids = layout.interleave(TOKENS, LENGTHS)
    assert ids.tolist() == [[A + 2, A + 4, A + 0, S + 1, S + 3, S + 5], [A + 1, A + 3, S + 6, S + 0, P, P]]
    assert torch.equal(layout.deinterleave(ids, 2 * LENGTHS), TOKENS)
    assert [layout.span_to_tokens(ids[0, :cut]).shape[0] for cut in range(7)] == [0, 0, 0, 0, 1, 2, 3]
    assert walk(layout, ids[0], max_frames=3) == ["a", "sa", "sa", "s", "s", "s", "e"]
    assert layout.continuation_ids(TOKENS[0]).tolist() == [A + 2, A + 4, A + 0]
    assert AudioTokenLayout.from_dict(layout.to_dict()) == layout
    with pytest.raises(ValueError, match="is not a acoustic id; in the 'acoustic_first' pattern"):
        layout.deinterleave(ids[0].flip(0))


def test_third_pattern_in_the_processor(acoustic_first):
    layout = acoustic_first
    proc = AudioTokenConstraintLogitsProcessor(layout, max_frames=2)
    st = layout.audio_start_id
    inputs = torch.tensor(
        [
            [1, 1, 2, 3, st],  # span opens: acoustic only
            [1, 1, st, A, A + 1],  # max_frames acoustic ids: semantic only
            [1, st, A, A + 1, S],  # semantic ids follow
            [st, A, A + 1, S, S + 1],  # whole frames at max_frames: end only
        ]
    )
    out = proc(inputs, torch.zeros(4, layout.vocab_size))
    allowed = [set(torch.isfinite(r).nonzero().flatten().tolist()) for r in out]
    acoustic, semantic = set(range(A, A + 5)), set(range(S, S + 7))
    assert allowed == [acoustic, semantic, semantic, {layout.audio_end_id}]


def test_third_pattern_generates(acoustic_first, sp):
    layout = AudioTokenLayout(
        text_vocab_size=sp.get_piece_size(), semantic_vocab_size=7, acoustic_vocab_size=5, pattern="acoustic_first"
    )
    tok = AudioTextTokenizer(sp, layout)
    model = build_lm(layout, TINY, seed=0).eval()
    torch.manual_seed(0)
    prompts = [tok.text_prompt("rain falls"), tok.text_prompt(None)]
    tokens, lengths = generate_tokens(model, layout, prompts, 4, unconditional_prompts=prompts[::-1],
                                      sampling=SamplingSettings(guidance_scale=2.0, temperature=2.0))
    assert tokens.shape == (2, int(lengths.max()), 2) and bool(((lengths >= 1) & (lengths <= 4)).all())
    clips = [TOKENS[0], TOKENS[1, :2]]
    prompts, frames = continuation_prompts(tok, clips)
    tokens, lengths = generate_tokens(model, layout, prompts, [f + 2 for f in frames],
                                      min_frames=[f + 1 for f in frames], sampling=SamplingSettings(temperature=2.0))
    for b, clip in enumerate(clips):
        assert frames[b] < lengths[b] <= frames[b] + 2
        assert torch.equal(tokens[b, : frames[b], 1], clip[:, 1])  # the prompt gave its acoustic ids
