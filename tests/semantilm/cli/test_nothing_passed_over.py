"""Inputs are never passed over and outputs never replaced without a word.

* A folder given to ``encode`` or ``eval-codec`` that holds a file which looks like audio but which the
  reader cannot open (``.m4a``) stops the command naming that file and the readable formats (exit 1),
  instead of encoding the others as if it were not there.
* ``eval-codec`` and ``eval-lm`` refuse to replace an existing JSON file unless ``--overwrite`` (exit 2,
  before any model loads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semantilm.cli.main import main

TINY = ["--codec", "tiny-random"]
DECODE = ["--steps", "1", "--sampler", "dpm++2m"]


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000), 16000)
    (src / "b.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A not audio soundfile can read")
    return src


@pytest.mark.parametrize("command", ["encode", "eval-codec"])
def test_an_unreadable_audio_file_in_a_folder_is_named(folder, tmp_path, capsys, command):
    out = tmp_path / ("tok" if command == "encode" else "scores.json")
    extra = ["--metrics", "mel", *DECODE] if command == "eval-codec" else []
    assert main([command, str(folder), "--out", str(out), *TINY, *extra]) == 1
    err = capsys.readouterr().err
    assert "b.m4a" in err and "ffmpeg" in err
    assert not out.exists() or not any(out.iterdir())


def test_eval_codec_refuses_to_replace_its_json(folder, tmp_path, capsys):
    wav = str(folder / "a.wav")
    out = tmp_path / "scores.json"
    out.write_text("{}")
    assert main(["eval-codec", wav, "--out", str(out), "--metrics", "mel", *DECODE, *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "{}"
    assert main(["eval-codec", wav, "--out", str(out), "--metrics", "mel", *DECODE, *TINY, "--overwrite"]) == 0
    assert out.read_text() != "{}"


def test_eval_lm_refuses_to_replace_its_json(tmp_path, capsys, monkeypatch):
    import semantilm.models.lm

    def refuse(*args, **kwargs):
        raise AssertionError("the LM loaded before the output was checked")

    monkeypatch.setattr(semantilm.models.lm, "load_lm", refuse)
    out = tmp_path / "losses.json"
    out.write_text("{}")
    assert main(["eval-lm", "--checkpoint", str(tmp_path), "--dataset", str(tmp_path), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "{}"
