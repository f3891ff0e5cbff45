"""The codec commands of the CLI: exit codes and messages around the codec library calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from codec import checkpoints
from codec.training.recipe import build_codec, load_codec_recipe_config
from semantilm.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "configs" / "recipes" / "codec" / "tiny_cpu.yaml"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A random codec with the sizes of the tiny trained codec, saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("src") / "codec"
    build_codec(load_codec_recipe_config(ROOT / "configs/recipes/codec/tiny_trained/vae.yaml").codec).save_pretrained(folder)
    return folder


def test_export_codec_command(source, tmp_path, capsys):
    assert main(["export-codec", str(source), str(tmp_path / "out"), "--name", "tiny", "--max-mb", "5"]) == 0
    assert "float16" in capsys.readouterr().out


def test_export_refuses_too_large_and_missing_source(source, tmp_path, capsys):
    folder = source
    assert main(["export-codec", str(folder), str(tmp_path / "big"), "--max-mb", "0.1"]) == 1
    assert "more than --max-mb 0.1" in capsys.readouterr().err
    assert not (tmp_path / "big" / "model.safetensors").exists()
    assert main(["export-codec", str(tmp_path / "none"), str(tmp_path / "x")]) == 2
    assert "neither a save_pretrained" in capsys.readouterr().err


def test_export_never_replaces_a_folder_unasked(source, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export-codec", str(source), str(out), "--name", "first"]) == 0
    first = (out / "model.safetensors").read_bytes()
    assert main(["export-codec", str(source), str(out), "--name", "second"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err
    assert (out / "model.safetensors").read_bytes() == first
    # a failed export with --overwrite leaves the folder as it was
    assert main(["export-codec", str(source), str(out), "--overwrite", "--max-mb", "0.1"]) == 1
    assert (out / "model.safetensors").read_bytes() == first and '"first"' in (out / "config.json").read_text()
    assert main(["export-codec", str(source), str(out), "--overwrite", "--name", "second", "--dtype", "float32"]) == 0
    assert '"second"' in (out / "config.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left behind


def test_encode_without_the_embedded_codec_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(checkpoints.EMBEDDED_CODECS, "tiny", tmp_path / "absent")
    wav = ROOT / "examples/audio/tone_440hz_16k.wav"
    assert main(["encode", str(wav), "--codec", "tiny", "--out", str(tmp_path / "tok")]) == 2
    assert "train_tiny_codec.sh" in capsys.readouterr().err


def test_cli_dispatches_codec_recipe(tmp_path, capsys):
    rc = main(["train", "--recipe", "codec", "--config", str(CONFIG), "--override", f"train.output_dir={tmp_path}",
               "train.max_steps=1", "data.synthetic_examples=2", "train.batch_size=1", "data.synthetic_seconds=1.2"])
    assert rc == 0 and "codec: 1 steps" in capsys.readouterr().out
    assert (tmp_path / "codec" / "model.safetensors").is_file()


def test_cli_recipe_mismatch_is_an_error(tmp_path):
    t2a = CONFIG.parents[1] / "text_to_audio" / "tiny_cpu.yaml"
    assert main(["train", "--recipe", "codec", "--config", str(t2a)]) == 2
    assert main(["train", "--recipe", "continuation", "--config", str(CONFIG)]) == 2


def test_info_and_help_say_what_the_embedded_codecs_are_for(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cannot carry speech (STOI 0.25" in out and "tiny-random" in out and "constant level" in out
    with pytest.raises(SystemExit):
        main(["encode", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "not for real audio" in help_text and "cannot carry speech, STOI 0.25" in help_text
