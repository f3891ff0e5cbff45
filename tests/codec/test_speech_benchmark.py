"""benchmarks/codec_speech.py: a table of the embedded codecs on speech and tones, or a clear skip."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "codec_speech.py"


def load_script(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first
    spec = importlib.util.spec_from_file_location("codec_speech", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_espeak_ng_the_speech_rows_are_skipped_with_a_message(monkeypatch, tmp_path):
    script = load_script(monkeypatch)
    monkeypatch.setattr(script.shutil, "which", lambda name: None)
    assert script.synthesize_speech(tmp_path) is None and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_folder_of_speech_gives_a_table(monkeypatch, tmp_path, capsys):
    script = load_script(monkeypatch)
    t = np.arange(12000) / 16000
    sf.write(tmp_path / "voice.wav", 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2, 16000)
    assert script.main([str(tmp_path), "--codecs", "tiny", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| tiny | speech | 1 | 0.8 |" in out and "| tiny | tones 200-1000 Hz (100 Hz grid) | 9 | 9.0 | - |" in out
