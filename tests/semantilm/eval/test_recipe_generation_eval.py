"""The text-to-audio recipe's ``eval.generation``: after training, the LM's clips for the eval captions are
judged against the eval rows with the tiny judge models; the config refuses what cannot be judged."""

import csv
import json
import logging
from pathlib import Path

import pytest

from plumbing.config_file import ConfigError
from semantilm.training.launch import recipe_summary
from semantilm.training.recipe_config import RecipeConfig, load_config
from semantilm.training.recipes import run_recipe

ROOT = Path(__file__).resolve().parents[3]


def config(out, *overrides):
    return load_config(
        RecipeConfig, ROOT / "configs" / "recipes" / "text_to_audio" / "tiny_cpu.yaml",
        [f"train.output_dir={out}", "data.synthetic_examples=12", "data.synthetic_seconds=0.3", "train.max_steps=2",
         "train.save_steps=2", "train.disable_tqdm=true", "train.report_to=none", *overrides],
    )


def test_the_recipe_judges_its_generated_audio(tmp_path, tiny_clap, tiny_ast, caplog):
    out = tmp_path / "run"
    c = config(out, "data.eval_fraction=0.25", "eval.generation=true", "eval.num_captions=2",
               f"eval.clap_model={tiny_clap}", f"eval.tagger={tiny_ast}", "eval.decode_steps=1",
               "eval.sampler=dpmsolver++", "eval.bootstrap=0")
    with caplog.at_level(logging.INFO, logger="semantilm.training.generation_eval"):
        result = run_recipe(c, task="text_to_audio")
    record = json.loads((out / "generation_metrics.json").read_text())
    summary = record["summary"]
    assert summary["num_generated"] == summary["num_reference"] == 2 and summary["kl_paired_clips"] == 2
    assert summary["fad"] >= 0 and summary["kl"] >= 0 and -1 <= summary["clap_score"] <= 1
    assert record["settings"]["clap_model"]["name"] == tiny_clap and record["settings"]["tagger"]["name"] == tiny_ast
    rows = list(csv.DictReader((out / "generation_metrics.csv").open()))
    assert [r["set"] for r in rows] == ["generated"] * 2 + ["reference"] * 2
    assert [r["caption"] for r in rows[:2]] == [r["caption"] for r in rows[2:]]  # the eval rows' captions
    listed = list(csv.DictReader((out / "generation_eval" / "metadata.csv").open()))
    assert [r["file_name"] for r in listed] == ["eval_000.wav", "eval_001.wav"]
    assert all((out / "generation_eval" / r["file_name"]).is_file() for r in listed)
    assert result.generation_metrics["generation_fad"] == pytest.approx(summary["fad"])
    assert all(k.startswith("generation_") for k in result.generation_metrics)  # what the training log got
    assert result.generation_metrics["generation_clap_score"] == pytest.approx(summary["clap_score"])
    assert "generated audio for 2 eval captions, judged against their reference clips" in caplog.text
    assert "| FAD ↓" in caplog.text
    assert f"generated audio: fad {summary['fad']:.4f}" in recipe_summary("text_to_audio", result)


def test_eval_generation_needs_captions_held_out_rows_and_known_metrics(tmp_path):
    with pytest.raises(ConfigError, match="eval.generation generates the captions of held-out rows: set "
                                          "data.eval_fraction or data.eval_dataset"):
        config(tmp_path, "eval.generation=true")
    with pytest.raises(ConfigError, match="it needs task text_to_audio"):
        load_config(RecipeConfig, ROOT / "configs" / "recipes" / "continuation" / "tiny_cpu.yaml",
                    ["eval.generation=true", "data.eval_fraction=0.25"])
    with pytest.raises(ConfigError, match="metrics must be distinct names from"):
        config(tmp_path, "eval.metrics=[fad,fid]")
    with pytest.raises(ConfigError, match="num_captions must be an integer >= 1"):
        config(tmp_path, "eval.num_captions=0")
    assert config(tmp_path).eval.generation is False  # off unless asked for


def test_judge_models_out_of_reach_stop_the_run_before_training(tmp_path, monkeypatch, tiny_ast):
    from semantilm.eval.pretrained_audio_models import ModelUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    c = config(tmp_path / "run", "data.eval_fraction=0.25", "eval.generation=true", "eval.clap_model=nobody/no-clap",
               f"eval.tagger={tiny_ast}", f"codec.cache_dir={tmp_path / 'hub'}")
    with pytest.raises(ModelUnavailableError, match=r"'nobody/no-clap' \(eval.clap_model\) could not be loaded"):
        run_recipe(c)
    assert not list((tmp_path / "run").glob("checkpoint-*")) and not (tmp_path / "run" / "model.safetensors").exists()


def test_eval_rows_without_captions_stop_the_run_before_training(tmp_path, tiny_clap, tiny_ast):
    from datasets import load_dataset

    first = tmp_path / "first"
    run_recipe(config(first, "train.max_steps=1", "train.save_steps=1"))  # a token folder to hold out
    rows = load_dataset("parquet", data_files=str(first / "tokens" / "train" / "*.parquet"), split="train")
    rows.remove_columns("caption").save_to_disk(str(tmp_path / "held_out"))
    c = config(tmp_path / "run", f"data.eval_dataset={tmp_path / 'held_out'}", "eval.generation=true",
               f"eval.clap_model={tiny_clap}", f"eval.tagger={tiny_ast}")
    with pytest.raises(ValueError, match="generates the captions of the eval rows, and they have none"):
        run_recipe(c)
    assert not list((tmp_path / "run").glob("checkpoint-*"))
