"""An interrupted ``semantilm encode`` / ``decode`` continues when the same command runs again (exit 130, then
0 without --overwrite): the files it finished are kept and not redone, and the result equals an
uninterrupted run. The library side is tested in tests/codec/test_resume.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from codec import SemantiCodec
from semantilm.cli.main import main
from tests.interrupts import five_tones, interrupt_call, same_audio, snapshot


@pytest.fixture
def sources(tmp_path) -> Path:
    return five_tones(tmp_path / "src")


@pytest.fixture
def interrupt_after(monkeypatch):
    return lambda module, name, n: interrupt_call(monkeypatch, module, name, n)


@pytest.fixture
def encoded_clips(monkeypatch):
    """The number of clips the codec encodes, over all calls."""
    clips = []
    real = SemantiCodec.encode

    def counting(self, audio, *args, **kwargs):
        clips.extend(audio)
        return real(self, audio, *args, **kwargs)

    monkeypatch.setattr(SemantiCodec, "encode", counting)
    return clips


def test_encode_interrupted_then_the_same_command_continues(sources, tmp_path, capsys, interrupt_after,
                                                            encoded_clips):
    import codec.token_file

    out = tmp_path / "tok"
    argv = ["encode", str(sources), "--codec", "tiny-random", "--batch-size", "1", "--out", str(out)]
    interrupt_after(codec.token_file, "save_tokens", 2)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "rerun the same command to continue" in err
    finished = snapshot(out)
    assert sorted(finished) == ["clip0.tokens.npz", "clip1.tokens.npz"]
    encoded_clips.clear()

    assert main(argv) == 0  # no --overwrite
    printed = capsys.readouterr().out
    assert "wrote 3 token files" in printed and "kept 2" in printed
    assert len(encoded_clips) == 3  # the finished files were not encoded again
    assert {k: v for k, v in snapshot(out).items() if k in finished} == finished  # nor written again

    whole = tmp_path / "whole"
    assert main([*argv[:-1], str(whole)]) == 0
    assert {k: v[0] for k, v in snapshot(out).items()} == {k: v[0] for k, v in snapshot(whole).items()}


def test_decode_interrupted_then_the_same_command_continues(sources, tmp_path, capsys, interrupt_after):
    import codec.compress as compress_module

    tokens = tmp_path / "tok"
    assert main(["encode", str(sources), "--codec", "tiny", "--out", str(tokens)]) == 0
    out = tmp_path / "wav"
    argv = ["decode", str(tokens), "--codec", "tiny", "--steps", "2", "--seed", "3", "--batch-size", "2",
            "--out", str(out)]
    interrupt_after(compress_module, "_write_wav", 2)
    assert main(argv) == 130
    assert "rerun the same command to continue" in capsys.readouterr().err
    finished = snapshot(out)
    assert len(finished) == 2
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 wav files" in printed and "kept 2" in printed
    assert {k: v for k, v in snapshot(out).items() if k in finished} == finished
    whole = tmp_path / "whole"
    assert main([*argv[:-1], str(whole)]) == 0
    assert sorted(snapshot(out)) == sorted(snapshot(whole))
    assert all(same_audio(out / name, whole / name) for name in snapshot(whole))
