"""``evaluate_generation`` with tiny random CLAP and AST models saved like hub checkpoints: FAD and KL of
the same tones against tones and noise, CLAP scores against a direct computation, failures, model loading."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from semantilm.eval import GenerationMetricsSettings, evaluate_generation
from semantilm.eval.clip_sources import WaveformClips
from semantilm.eval.pretrained_audio_models import (
    ModelUnavailableError,
    PretrainedModelError,
    load_pretrained,
)
from tests.semantilm.eval.tiny_judges import tone, write_folder


def settings(tiny_clap, tiny_ast, **kwargs):
    return GenerationMetricsSettings(clap_model=tiny_clap, tagger=tiny_ast, progress=False, bootstrap=20, **kwargs)


def test_same_tones_are_close_and_noise_is_far(tiny_clap, tiny_ast, sound_folders):
    same = evaluate_generation(sound_folders["tones"], sound_folders["same_tones"], settings(tiny_clap, tiny_ast))
    noise = evaluate_generation(sound_folders["tones"], sound_folders["noise"], settings(tiny_clap, tiny_ast))
    assert same.summary["num_generated"] == same.summary["num_reference"] == 11
    assert same.summary["fad"] < 0.01 and noise.summary["fad"] > 0.5
    assert same.summary["kl"] < 1e-5 and noise.summary["kl"] > 1e-4
    assert same.summary["kl_paired_clips"] == 11
    assert same.summary["fad_low"] <= same.summary["fad_high"]  # 11 clips: the interval is there
    assert same.settings["clap_model"] == {"name": tiny_clap, "sample_rate": 48000}
    assert same.settings["tagger"]["sample_rate"] == 16000 and same.settings["fad_model"]["name"] == tiny_clap
    rows = [c for c in noise.clips if c["set"] == "generated"]
    assert len(rows) == 11 and all(r["clap_score"] is not None and r["kl_pairs"] == 1 for r in rows)
    assert noise.summary["clap_score"] == pytest.approx(np.mean([r["clap_score"] for r in rows]))


def direct_clap_score(folder, wave, caption):
    """The cosine of the CLAP audio and text embeddings, computed with the processor and model directly."""
    from transformers import ClapModel, ClapProcessor

    model, processor = ClapModel.from_pretrained(folder).eval(), ClapProcessor.from_pretrained(folder)
    with torch.no_grad():
        audio = processor.feature_extractor(wave, sampling_rate=48000, return_tensors="pt")
        a = model.get_audio_features(input_features=audio["input_features"], is_longer=torch.zeros(1, 1, dtype=bool))
        text = processor.tokenizer([caption], return_tensors="pt")
        t = model.get_text_features(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
    a, t = (x.pooler_output if hasattr(x, "pooler_output") else x for x in (a, t))
    return float(torch.nn.functional.cosine_similarity(a, t)[0])


def test_clap_score_per_clip_matches_a_direct_computation(tiny_clap, tiny_ast, tmp_path):
    waves = {"low": tone(300, 0.8, 48000), "high": tone(1200, 0.6, 48000)}
    texts = {"low": "a low hum", "high": "a high beep"}
    folder = write_folder(tmp_path / "gen", waves, texts, rate=48000)  # 48 kHz: no resampling before CLAP
    result = evaluate_generation(folder, None, settings(tiny_clap, tiny_ast, metrics=("clap",)))
    scores = {Path(r["name"]).stem: r["clap_score"] for r in result.clips}
    for name in waves:
        pcm16 = sf.read(folder / f"{name}.wav", dtype="float32")[0]
        assert scores[name] == pytest.approx(direct_clap_score(tiny_clap, pcm16, texts[name]), abs=1e-5)
    assert set(result.summary) >= {"clap_score", "clap_scored_clips"} and "fad" not in result.summary


def test_long_clips_are_the_mean_of_their_windows(tiny_clap, tiny_ast):
    """The tiny CLAP sees 1 s windows: a 2.5 s clip is cut in 3 equal windows, whatever its batch."""
    from semantilm.eval.clap_model import ClapEmbedder

    clap = ClapEmbedder(tiny_clap)
    long = torch.from_numpy(np.concatenate([tone(300, 1.0, 48000), tone(900, 1.5, 48000)]))
    parts = clap.embed(list(long.split(40000)))
    mean = parts.mean(axis=0)
    np.testing.assert_allclose(clap.embed([long])[0], mean / np.linalg.norm(mean), atol=1e-6)
    np.testing.assert_allclose(clap.embed([long, long[:1000]])[0], clap.embed([long])[0], atol=1e-6)


def test_unreadable_short_and_missing_clips_are_listed_not_dropped(tiny_clap, tiny_ast, tmp_path, sound_folders):
    gen = write_folder(tmp_path / "gen", {f"t{f}": tone(f) for f in (220, 330, 440)},
                       {"t220": "a sine tone at 220 Hz", "t330": "a sine tone at 330 Hz", "t440": "x"})
    (gen / "broken.wav").write_bytes(b"RIFF not a wave file")
    sf.write(gen / "short.wav", tone(500, 0.05), 16000)
    with (gen / "metadata.csv").open("a") as f:
        f.write("gone.wav,a tone that is not there\n")
    from codec.audio import AudioWarning

    with pytest.warns(AudioWarning, match="2 of the 6 audio files .* are in no metadata file .* judged without a caption"):
        result = evaluate_generation(gen, sound_folders["tones"], settings(tiny_clap, tiny_ast))
    errors = {c["name"]: c["error"] for c in result.clips if c["error"]}
    assert set(errors) == {"broken.wav", "short.wav", "gone.wav"}
    assert "could not read audio file" in errors["broken.wav"]
    assert "'metadata.csv' line 5 lists 'gone.wav', but there is no such file" in errors["gone.wav"]
    assert errors["short.wav"] == "clip 'short.wav' lasts 0.050 s; the judge models need at least 0.1 s"
    assert result.summary["num_generated"] == 3 and result.summary["num_failed"] == 3
    assert result.summary["kl_paired_clips"] == 2  # "x" has no reference clip
    assert "3 clip(s) could not be judged" in result.table()
    with pytest.raises(ValueError, match="generated clip 'broken.wav' cannot be judged: could not read audio file"):
        evaluate_generation(gen, sound_folders["tones"], settings(tiny_clap, tiny_ast, on_error="stop"))


def test_metrics_that_cannot_be_computed_say_why(tiny_clap, tiny_ast, sound_folders):
    with pytest.raises(ValueError, match="fad, kl compare with reference clips"):
        evaluate_generation(sound_folders["tones"], None, settings(tiny_clap, tiny_ast))
    waves = [torch.from_numpy(tone(f)) for f in (300, 400)]
    other = WaveformClips(["a", "b"], ["a bird sings", "a car"], waves, 16000)
    result = evaluate_generation(other, sound_folders["tones"], settings(tiny_clap, tiny_ast))
    assert result.unavailable == {"kl": "no generated clip has the caption of a reference clip"}
    assert "fad" in result.summary and "kl: not measured (no generated clip has the caption" in result.table()
    uncaptioned = WaveformClips(["a", "b"], [None, " "], waves, 16000)
    with pytest.raises(ValueError, match="no metric could be computed: clap: no clip has a caption"):
        evaluate_generation(uncaptioned, None, settings(tiny_clap, tiny_ast, metrics=("clap",)))
    with pytest.raises(ValueError, match="metrics must be distinct names from"):
        GenerationMetricsSettings(metrics=("fad", "is"))


def test_other_fad_embedders_and_models_of_the_wrong_kind(tiny_clap, tiny_ast, sound_folders):
    """--fad-model takes any transformers audio model (here the AST's encoder); a tagger is no CLAP."""
    s = settings(tiny_clap, tiny_ast, metrics=("fad",), fad_model=tiny_ast)
    result = evaluate_generation(sound_folders["tones"], sound_folders["same_tones"], s)
    assert result.settings["fad_model"] == {"name": tiny_ast, "sample_rate": 16000} and "clap_model" not in result.settings
    assert result.fad["dimensions"] == 16 and result.summary["fad"] >= 0
    with pytest.raises(PretrainedModelError, match="is a 'audio-spectrogram-transformer' model; pass a CLAP"):
        evaluate_generation(sound_folders["tones"], None, settings(tiny_ast, tiny_ast, metrics=("clap",)))
    with pytest.raises(PretrainedModelError, match="is a 'clap' model, not an audio classifier"):
        evaluate_generation(sound_folders["tones"], sound_folders["tones"], settings(tiny_clap, tiny_clap, metrics=("kl",)))


def test_unreachable_models_name_themselves_and_how_to_place_them(tmp_path, monkeypatch):
    from transformers import AutoConfig

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"the CLAP model 'nobody/no-clap' \(--clap-model\) could not be "
                       r"loaded: it is not in the Hugging Face cache and HF_HUB_OFFLINE is set.*huggingface-cli "
                       r"download nobody/no-clap"):
        load_pretrained(AutoConfig, "nobody/no-clap", "CLAP model", "--clap-model", cache_dir=str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="no such folder"):
        load_pretrained(AutoConfig, str(tmp_path / "missing"), "audio tagger", "--tagger")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainedModelError, match="is not a complete transformers model folder"):
        load_pretrained(AutoConfig, str(tmp_path / "empty"), "audio tagger", "--tagger")


def test_a_failed_download_falls_back_to_the_cache(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls = []

    class Loader:
        @staticmethod
        def from_pretrained(name, cache_dir=None, local_files_only=False):
            calls.append(local_files_only)
            if not local_files_only:
                raise OSError("We couldn't connect to 'https://huggingface.co'")
            return "from the cache"

    assert load_pretrained(Loader, "owner/model", "CLAP model", "--clap-model") == "from the cache"
    assert calls == [False, True]


def test_captions_with_commas_survive_the_csv(tiny_clap, tiny_ast, tmp_path):
    import csv

    folder = write_folder(tmp_path / "gen", {"a": tone(440)}, None)
    (folder / "metadata.csv").write_text('file_name,caption\na.wav,"rain, then thunder"\n')
    result = evaluate_generation(folder, None, settings(tiny_clap, tiny_ast, metrics=("clap",)))
    json_path, csv_path = result.save(tmp_path / "out" / "m.json")
    rows = list(csv.DictReader(csv_path.open()))
    assert rows[0]["caption"] == "rain, then thunder" and float(rows[0]["clap_score"]) == result.summary["clap_score"]
    with pytest.raises(FileExistsError, match="already exist"):
        result.save(json_path)
