"""Codec round-trip evaluation, LM loss split and prompt adherence (fast: FakeCodec and synthetic sounds)."""

import json
import math

import numpy as np
import pytest
import torch

from semantilm import eval_codec
from semantilm.adherence import classify_kind, parse_caption, prompt_adherence, sweep_endpoints
from semantilm.eval_lm import KINDS, token_loss_sums
from semantilm.layout import AudioTokenLayout
from semantilm.synthetic import SyntheticSoundConfig, synthetic_sounds

from .conftest import FakeCodec


def clips(n=3, seconds=0.5):
    g = torch.Generator().manual_seed(0)
    return [(f"clip{i}", 0.3 * torch.randn(int(seconds * 16000) + 37 * i, generator=g), 16000) for i in range(n)]


def test_evaluate_codec_scores_every_clip_in_order():
    codec = FakeCodec()
    result = eval_codec.evaluate_codec(codec, clips(), metrics=["mel", "mrstft", "si_sdr"], batch_size=2)
    assert [c.name for c in result.clips] == ["clip0", "clip1", "clip2"]
    assert result.clips[1].seconds == pytest.approx((8000 + 37) / 16000)  # trimmed to the input length
    assert result.bitrate == pytest.approx(codec.frame_rate * (math.log2(16) + math.log2(8)))
    assert result.metrics == ["mel", "mrstft", "si_sdr"] and result.unavailable == {}
    one_batch = eval_codec.evaluate_codec(FakeCodec(), clips(), metrics=["mel", "mrstft", "si_sdr"], batch_size=8)
    assert result.means == pytest.approx(one_batch.means)
    table = result.table(per_clip=True)
    assert table.splitlines()[0].startswith("| codec | kbps | clips | audio s | mel dist ↓")
    assert len(table.splitlines()) == 2 + 1 + 3


def test_resampled_input_and_unavailable_metrics(monkeypatch):
    import codec.metrics

    monkeypatch.setattr(codec.metrics, "metric_unavailable",
                        lambda name: "the 'pystoi' package is not installed" if name in ("stoi", "visqol") else None)
    wave = torch.sin(torch.arange(22050) / 22050 * 2 * math.pi * 440) * 0.5
    result = eval_codec.evaluate_codec(FakeCodec(), [("a", wave, 22050)], metrics=["si_sdr", "stoi"])
    assert result.metrics == ["si_sdr"] and "pystoi" in result.unavailable["stoi"]
    assert result.clips[0].seconds == pytest.approx(1.0, abs=1e-3)
    assert "STOI: not measured (the 'pystoi' package is not installed)" in result.table()


def test_failed_metric_is_nan_with_a_note_and_json_has_null(tmp_path, monkeypatch):
    def failing(sample_rate):
        functions = real(sample_rate)
        functions["si_sdr"] = lambda r, e: (_ for _ in ()).throw(ValueError("no utterance"))
        return functions

    real = eval_codec._metric_functions
    monkeypatch.setattr(eval_codec, "_metric_functions", failing)
    result = eval_codec.evaluate_codec(FakeCodec(), clips(2), metrics=["mel", "si_sdr"])
    assert math.isnan(result.means["si_sdr"]) and not math.isnan(result.means["mel"])
    assert "2 clip(s) could not be scored" in result.table()
    path = result.save_json(tmp_path / "sub" / "eval.json")
    data = json.loads(path.read_text())
    assert data["means"]["si_sdr"] is None and data["clips"][0]["notes"]["si_sdr"] == "clip0: no utterance"
    assert [p.name for p in path.parent.iterdir()] == ["eval.json"]  # no temporary file left behind


def test_evaluate_codec_errors():
    with pytest.raises(ValueError, match=r"unknown \['mos'\]"):
        eval_codec.evaluate_codec(FakeCodec(), clips(), metrics=["mel", "mos"])
    with pytest.raises(ValueError, match="batch_size"):
        eval_codec.evaluate_codec(FakeCodec(), clips(), batch_size=0)
    with pytest.raises(ValueError, match="no clips"):
        eval_codec.evaluate_codec(FakeCodec(), [], metrics=["mel"])
    with pytest.raises(ValueError, match="NaN or Inf"):
        eval_codec.evaluate_codec(FakeCodec(), [("bad", torch.full((800,), float("nan")), 16000)], metrics=["mel"])
    with pytest.raises(TypeError, match="AudioCodec contract"):
        eval_codec.evaluate_codec(object(), clips(), metrics=["mel"])


def test_dataset_clips_reads_audio_cells():
    from semantilm.synthetic import synthetic_dataset

    data = synthetic_dataset(SyntheticSoundConfig(num_examples=2, seconds=0.2))
    rows = list(eval_codec.dataset_clips(data, name_column="caption"))
    assert [r[0] for r in rows] == data["caption"] and rows[0][1].shape == (3200,) and rows[0][2] == 16000
    with pytest.raises(ValueError, match="not a column"):
        list(eval_codec.dataset_clips(data, audio_column="wave"))


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
