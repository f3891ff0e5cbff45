"""LM loss split by token kind and prompt adherence of generated audio (synthetic sounds)."""

import math

import numpy as np
import pytest
import torch

from codec.data.synthetic import SyntheticSoundConfig, synthetic_sounds
from semantilm.eval.adherence import classify_kind, parse_caption, prompt_adherence, sweep_endpoints
from semantilm.eval.lm import KINDS, token_loss_sums
from semantilm.tokens.layout import AudioTokenLayout


def test_token_loss_split_by_kind():
    layout = AudioTokenLayout(text_vocab_size=10, semantic_vocab_size=6, acoustic_vocab_size=4, frame_rate=50.0)
    s, a, end = layout.semantic_offset, layout.acoustic_offset, layout.audio_end_id
    labels = torch.tensor([[-100, -100, s + 1, a + 2, s + 3, a + 0, end, -100]])
    logits = torch.zeros(1, labels.shape[1], layout.vocab_size)
    logits[0, 1, s + 1] = 30.0  # position 1 predicts the first semantic id with certainty
    sums = token_loss_sums(logits, labels, layout)
    assert {k: n for k, (_, n) in sums.items()} == {"all": 5, "semantic": 2, "acoustic": 2, "other": 1}
    uniform = math.log(layout.vocab_size)
    assert sums["acoustic"][0] == pytest.approx(2 * uniform) and sums["other"][0] == pytest.approx(uniform)
    assert sums["semantic"][0] == pytest.approx(uniform, abs=1e-6)  # one certain (loss 0) + one uniform
    assert set(sums) == set(KINDS)
    with pytest.raises(ValueError, match="classes but the layout needs"):
        token_loss_sums(logits[..., :5], labels, layout)
    with pytest.raises(ValueError, match=r"\[B, L, V\]"):
        token_loss_sums(logits[0], labels, layout)


def test_synthetic_sounds_adhere_to_their_captions():
    sounds = synthetic_sounds(SyntheticSoundConfig(num_examples=40, seconds=2.0))
    captions, waves = [s.caption for s in sounds], [s.audio for s in sounds]
    result = prompt_adherence(captions, waves, 16000)
    assert result["pitch_accuracy"] == 1.0 and result["kind_accuracy"] == 1.0
    assert result["num_pitched"] == sum(s.kind in ("tone", "chord", "sweep") for s in sounds)
    shifted = prompt_adherence(captions, [torch.from_numpy(w) for w in waves[1:] + waves[:1]], 16000)
    assert shifted["pitch_accuracy"] < 0.2 and shifted["kind_accuracy"] < 0.5


def test_pitch_tolerance_is_three_percent():
    t = np.arange(16000) / 16000
    caption = "a steady sine tone at 440 Hz (A4)"
    ok = prompt_adherence([caption], [np.sin(2 * np.pi * 440 * 1.025 * t)], 16000)
    off = prompt_adherence([caption], [np.sin(2 * np.pi * 440 * 1.035 * t)], 16000)
    assert ok["pitch_accuracy"] == 1.0 and off["pitch_accuracy"] == 0.0
    assert ok["clips"][0]["measured_kind"] == "tone"


def test_parse_caption_and_errors():
    assert parse_caption("a steady sine tone at 262 Hz (C4)") == {"kind": "tone", "frequency": 262.0, "start_frequency": None}
    chord = parse_caption("a A#4 minor chord of three sine tones")
    assert chord["kind"] == "chord" and chord["frequency"] == pytest.approx(466.16, abs=0.01)
    assert parse_caption("a falling sweep from 740 Hz to 165 Hz")["frequency"] == 165.0
    assert parse_caption("rhythmic clicks, 4 per second") == {"kind": "clicks", "frequency": None, "start_frequency": None}
    assert parse_caption("a dog barks")["kind"] is None
    assert prompt_adherence(["a dog barks"], [np.zeros(100)], 16000)["pitch_accuracy"] is None
    assert classify_kind(np.zeros(16000), 16000) == "noise"
    with pytest.raises(ValueError, match="one per clip"):
        prompt_adherence(["a"], [], 16000)
    with pytest.raises(ValueError, match="empty"):
        prompt_adherence([], [], 16000)
    with pytest.raises(ValueError, match="tolerance"):
        prompt_adherence(["a"], [np.zeros(10)], 16000, tolerance=3)
    with pytest.raises(TypeError, match="caption must be a string"):
        parse_caption(None)
    with pytest.raises(ValueError, match="too short to follow a sweep"):
        sweep_endpoints(np.zeros(1000), 16000)
