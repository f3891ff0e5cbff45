"""Codec round-trip evaluation: scores per clip, optional metrics, errors (fast: a stand-in codec)."""

import json
import math

import pytest
import torch

from codec.data.synthetic import SyntheticSoundConfig
from codec.eval import evaluate, metrics
from tests.fake_codec import FakeCodec


def clips(n=3, seconds=0.5):
    g = torch.Generator().manual_seed(0)
    return [(f"clip{i}", 0.3 * torch.randn(int(seconds * 16000) + 37 * i, generator=g), 16000) for i in range(n)]


def test_evaluate_codec_scores_every_clip_in_order():
    codec = FakeCodec()
    result = evaluate.evaluate_codec(codec, clips(), metrics=["mel", "mrstft", "si_sdr"], batch_size=2)
    assert [c.name for c in result.clips] == ["clip0", "clip1", "clip2"]
    assert result.clips[1].seconds == pytest.approx((8000 + 37) / 16000)  # trimmed to the input length
    assert result.bitrate == pytest.approx(codec.frame_rate * (math.log2(16) + math.log2(8)))
    assert result.metrics == ["mel", "mrstft", "si_sdr"] and result.unavailable == {}
    one_batch = evaluate.evaluate_codec(FakeCodec(), clips(), metrics=["mel", "mrstft", "si_sdr"], batch_size=8)
    assert result.means == pytest.approx(one_batch.means)
    table = result.table(per_clip=True)
    assert table.splitlines()[0].startswith("| codec | kbps | clips | audio s | mel dist ↓")
    assert len(table.splitlines()) == 2 + 1 + 3


def test_resampled_input_and_unavailable_metrics(monkeypatch):
    import codec.eval.metrics

    monkeypatch.setattr(codec.eval.metrics, "metric_unavailable",
                        lambda name: "the 'pystoi' package is not installed" if name in ("stoi", "visqol") else None)
    wave = torch.sin(torch.arange(22050) / 22050 * 2 * math.pi * 440) * 0.5
    result = evaluate.evaluate_codec(FakeCodec(), [("a", wave, 22050)], metrics=["si_sdr", "stoi"])
    assert result.metrics == ["si_sdr"] and "pystoi" in result.unavailable["stoi"]
    assert result.clips[0].seconds == pytest.approx(1.0, abs=1e-3)
    assert "STOI: not measured (the 'pystoi' package is not installed)" in result.table()


def test_failed_metric_is_nan_with_a_note_and_json_has_null(tmp_path, monkeypatch):
    def failing(sample_rate):
        functions = real(sample_rate)
        functions["si_sdr"] = lambda r, e: (_ for _ in ()).throw(ValueError("no utterance"))
        return functions

    real = evaluate._metric_functions
    monkeypatch.setattr(evaluate, "_metric_functions", failing)
    result = evaluate.evaluate_codec(FakeCodec(), clips(2), metrics=["mel", "si_sdr"])
    assert math.isnan(result.means["si_sdr"]) and not math.isnan(result.means["mel"])
    assert "2 clip(s) could not be scored" in result.table()
    path = result.save_json(tmp_path / "sub" / "eval.json")
    data = json.loads(path.read_text())
    assert data["means"]["si_sdr"] is None and data["clips"][0]["notes"]["si_sdr"] == "clip0: no utterance"
    assert [p.name for p in path.parent.iterdir()] == ["eval.json"]  # no temporary file left behind


def test_evaluate_codec_errors():
    with pytest.raises(ValueError, match=r"unknown \['mos'\]"):
        evaluate.evaluate_codec(FakeCodec(), clips(), metrics=["mel", "mos"])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate.evaluate_codec(FakeCodec(), clips(), batch_size=0)
    with pytest.raises(ValueError, match="no clips"):
        evaluate.evaluate_codec(FakeCodec(), [], metrics=["mel"])
    with pytest.raises(ValueError, match="NaN or Inf"):
        evaluate.evaluate_codec(FakeCodec(), [("bad", torch.full((800,), float("nan")), 16000)], metrics=["mel"])
    with pytest.raises(TypeError, match="cannot be evaluated"):
        evaluate.evaluate_codec(object(), clips(), metrics=["mel"])


def test_dataset_clips_reads_audio_cells():
    from codec.data.synthetic import synthetic_dataset

    data = synthetic_dataset(SyntheticSoundConfig(num_examples=2, seconds=0.2))
    rows = list(evaluate.dataset_clips(data, name_column="caption"))
    assert [r[0] for r in rows] == data["caption"] and rows[0][1].shape == (3200,) and rows[0][2] == 16000
    with pytest.raises(ValueError, match="not a column"):
        list(evaluate.dataset_clips(data, audio_column="wave"))




class RecordingCodec(FakeCodec):
    """FakeCodec that keeps the keyword arguments of every decode call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def decode(self, tokens, lengths=None, **kwargs):
        self.calls.append(kwargs)
        return super().decode(tokens, lengths)


def test_evaluate_codec_decodes_with_the_given_settings():
    from codec.sampling import DecodeSettings

    codec, generator = RecordingCodec(), torch.Generator()
    settings = DecodeSettings(sampler="dpmsolver++", steps=4)
    result = evaluate.evaluate_codec(codec, clips(2), metrics=["mel"], settings=settings, generator=generator)
    assert codec.calls == [{"settings": settings, "generator": generator}]
    assert result.settings == {"sampler": "dpmsolver++", "steps": 4}  # eta is DDIM's only


@pytest.mark.skipif(metrics.metric_unavailable("visqol") is not None, reason="visqol-python not installed")
def test_visqol_column_when_installed():
    """With visqol-python installed, ViSQOL is measured like any metric (a 1..5 MOS per clip); a
    clip too short for it is NaN with a note instead of failing the run."""
    result = evaluate.evaluate_codec(FakeCodec(), clips(n=1, seconds=1.5) + clips(n=1, seconds=0.2),
                                     metrics=["si_sdr", "visqol"])
    assert result.metrics == ["si_sdr", "visqol"] and result.unavailable == {}
    assert 1.0 <= result.clips[0].scores["visqol"] <= 5.0
    assert math.isnan(result.clips[1].scores["visqol"]) and "ViSQOL cannot score" in result.clips[1].notes["visqol"]
    assert "ViSQOL: 1 clip(s) could not be scored" in result.table()
