"""recipes/<task>/train.py: each script reads its config, runs its recipe, and exits 0 / 1 / 2."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from semantilm.training.launch import recipe_parser, recipe_script

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[3]
TASKS = ("text_to_audio", "continuation", "codec")


def script(task: str) -> dict:
    return runpy.run_path(str(ROOT / "recipes" / task / "train.py"), run_name="recipe")


@pytest.mark.parametrize("task", TASKS)
def test_each_script_is_its_recipe(task, tmp_path, monkeypatch, capsys):
    namespace = script(task)
    assert namespace["TASK"] == task and callable(namespace["train"])
    monkeypatch.setattr(sys, "argv", ["train.py", "--config", str(tmp_path / "none.yaml")])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "recipes" / task / "train.py"), run_name="__main__")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{task} recipe: error:") and "does not exist" in err and len(err.splitlines()) == 1


def test_config_errors_exit_2_and_failed_runs_exit_1(tmp_path, capsys):
    train = script("text_to_audio")["train"]
    config = str(ROOT / "configs" / "recipes" / "text_to_audio" / "tiny_cpu.yaml")
    assert recipe_script("text_to_audio", None, train, ["--config", config, "--override", "train.lerning_rate=1"]) == 2
    assert "unknown key 'train.lerning_rate'" in capsys.readouterr().err
    codec_config = str(ROOT / "configs" / "recipes" / "codec" / "tiny_cpu.yaml")
    assert recipe_script("continuation", None, script("continuation")["train"], ["--config", codec_config]) == 2
    capsys.readouterr()
    argv = ["--config", config, "--override", f"train.output_dir={tmp_path / 'run'}",
            f"data.dataset={tmp_path / 'missing'}"]
    assert recipe_script("text_to_audio", None, train, argv) == 1
    assert "neither a folder of audio files nor a folder saved" in capsys.readouterr().err


def test_the_codec_script_trains_and_prints_a_summary(tmp_path, capsys):
    argv = ["--config", str(ROOT / "configs" / "recipes" / "codec" / "tiny_cpu.yaml"), "--override",
            f"train.output_dir={tmp_path}", "train.max_steps=1", "data.synthetic_examples=2", "train.batch_size=1",
            "data.synthetic_seconds=1.2"]
    assert recipe_script("codec", None, script("codec")["train"], argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("codec: 1 steps") and str(tmp_path / "codec") in out


def test_repeated_override_flags_accumulate():
    parser = recipe_parser("text_to_audio", "t")
    for argv in (["--override", "train.max_steps=3", "--override", "train.bf16=true"],
                 ["--override", "train.max_steps=3", "train.bf16=true"]):
        assert parser.parse_args(["--config", "c.yaml", *argv]).override == ["train.max_steps=3", "train.bf16=true"]
