"""The audio-token constraint allows exactly what each token pattern's ``allowed_next`` allows,
so a pattern's rules decide where generated clips may end (``semantic_first`` included)."""

import itertools

import pytest
import torch

from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import generate_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.patterns import PATTERNS
from tests.semantilm.tokens.test_patterns import AcousticFirstPattern

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=96)


def small_layout(pattern: str) -> AudioTokenLayout:
    return AudioTokenLayout(text_vocab_size=6, semantic_vocab_size=4, acoustic_vocab_size=3, pattern=pattern)


@pytest.fixture(params=[*PATTERNS, AcousticFirstPattern.name])
def layout(request, monkeypatch):
    """Every registered pattern, and a third one defined only in the tests."""
    monkeypatch.setitem(PATTERNS, AcousticFirstPattern.name, AcousticFirstPattern)
    return small_layout(request.param)


def _allowed(scores: torch.Tensor) -> list[set[int]]:
    return [set(torch.isfinite(row).nonzero().flatten().tolist()) for row in scores]


def test_processor_allows_exactly_what_the_pattern_allows(layout):
    """Every (semantic ids, acoustic ids) count in a span, for frame limits around it, as one batch
    with per-row limits: the ids that keep a finite score are the kinds ``allowed_next`` names;
    where it names none, the span must end."""
    lay = layout
    sem = set(range(lay.semantic_offset, lay.acoustic_offset))
    aco = set(range(lay.acoustic_offset, lay.vocab_size))
    end = {lay.audio_end_id}
    rows, limits, expected = [], [], []
    for max_frames in range(1, 5):
        for min_frames in range(1, max_frames + 1):
            for n_sem, n_aco in itertools.product(range(max_frames + 2), repeat=2):
                span = [lay.semantic_offset + k % 4 for k in range(n_sem)] + [lay.acoustic_offset + k % 3 for k in range(n_aco)]
                rows.append([1, 2, lay.audio_start_id, *span])
                limits.append((max_frames, min_frames))
                s, a, e = (bool(x) for x in lay.allowed_next(
                    torch.tensor([n_sem]), torch.tensor([n_aco]), torch.tensor(max_frames), torch.tensor(min_frames)))
                kinds = (sem if s else set()) | (aco if a else set()) | (end if e else set())
                expected.append(kinds or end)
    width = max(len(r) for r in rows)
    ids = torch.tensor([[lay.pad_id] * (width - len(r)) + r for r in rows])
    max_t, min_t = (torch.tensor(col) for col in zip(*limits))
    out = AudioTokenConstraintLogitsProcessor(lay, max_t, min_frames=min_t)(ids, torch.zeros(len(rows), lay.vocab_size))
    got = _allowed(out)
    wrong = [(rows[i], limits[i]) for i in range(len(rows)) if got[i] != expected[i]]
    assert not wrong, f"{len(wrong)} states differ from allowed_next, e.g. {wrong[:3]}"
    # both kinds at once occur in every pattern but interleave: the case the processor used to cut to one kind
    both = [i for i, k in enumerate(expected) if sem <= k and aco <= k]
    assert bool(both) == (lay.pattern != "interleave")


def test_outside_a_span_only_start_then_only_pad(layout):
    lay = layout
    frame = [lay.audio_start_id, lay.semantic_offset, lay.acoustic_offset, lay.audio_end_id]
    ids = torch.tensor([
        [1, 2, 3, 4, 5],  # no span opened yet
        [lay.pad_id, *frame],  # the span has ended
        [*frame, lay.pad_id],  # and padding follows its end
    ])
    out = AudioTokenConstraintLogitsProcessor(lay, 3)(ids, torch.zeros(3, lay.vocab_size))
    assert _allowed(out) == [{lay.audio_start_id}, {lay.pad_id}, {lay.pad_id}]


# Tokens of generate_tokens with the processor as it was before semantic_first could end early;
# the interleave pattern never allows two kinds at once, so its draws must stay these.
INTERLEAVE_TOKENS = [
    [[4, 1], [8, 0], [3, 4], [2, 4], [0, 0], [0, 0]],
    [[0, 5], [6, 0], [0, 1], [1, 3], [5, 5], [0, 0]],
    [[2, 1], [5, 3], [1, 2], [0, 0], [0, 0], [0, 0]],
    [[2, 1], [3, 2], [8, 4], [3, 3], [4, 4], [2, 3]],
]
INTERLEAVE_LENGTHS = [4, 5, 3, 6]


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_interleave_generation_for_a_seed_is_unchanged(guidance):
    lay = AudioTokenLayout(text_vocab_size=10, semantic_vocab_size=9, acoustic_vocab_size=6)
    model = build_lm(lay, TINY, seed=0).eval()
    start = lay.audio_start_id
    prompts = [[1, 2, 3, start], [4, start, lay.semantic_offset + 2, lay.acoustic_offset + 1]]
    sampling = SamplingSettings(guidance_scale=guidance, num_return_sequences=2, top_k=None, seed=0)
    tokens, lengths = generate_tokens(model, lay, prompts, [5, 9], unconditional_prompts=[[start], [start]],
                                      min_frames=[1, 2], sampling=sampling)
    assert tokens.tolist() == INTERLEAVE_TOKENS and lengths.tolist() == INTERLEAVE_LENGTHS


def _train_on_two_lengths(layout: AudioTokenLayout, short: int, long: int, steps: int) -> torch.nn.Module:
    """A tiny LM trained on ``<|audio_start|> span <|audio_end|>`` sequences of two lengths: short
    clips use semantic ids {0, 1}, long ones {2, 3}, so the first id tells the length."""
    torch.manual_seed(0)
    model = build_lm(layout, LMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64, max_position_embeddings=64), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    width = 2 * long + 2
    model.train()
    for _ in range(steps):
        ids, labels = [], []
        for k in range(16):
            frames, first = (short, 0) if k % 2 else (long, 2)
            clip = torch.stack([first + torch.randint(0, 2, (frames,)), torch.randint(0, 3, (frames,))], dim=-1)
            row = [layout.audio_start_id, *layout.interleave(clip).tolist(), layout.audio_end_id]
            pad = width - len(row)
            ids.append(row + [layout.pad_id] * pad)
            labels.append(row + [-100] * pad)
        loss = model(input_ids=torch.tensor(ids), labels=torch.tensor(labels)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_a_trained_semantic_first_lm_chooses_its_clip_lengths():
    """Trained on clips of 2 and 5 frames, the LM writes clips of 2 and 5 frames, about half each,
    not every clip up to the limit of 10."""
    layout = small_layout("semantic_first")
    model = _train_on_two_lengths(layout, short=2, long=5, steps=200)
    sampling = SamplingSettings(num_return_sequences=24, top_k=None, seed=1, batch_size=1)
    _, lengths = generate_tokens(model, layout, [[layout.audio_start_id]], 10, sampling=sampling)
    counts = {n: lengths.tolist().count(n) for n in set(lengths.tolist())}
    assert set(counts) == {2, 5}, counts
    assert min(counts.values()) >= 4, counts
