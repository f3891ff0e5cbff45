"""The command line: every sub-command runs offline and errors exit non-zero with a message."""

from pathlib import Path

import pytest
import torch

from codec.token_file import load_tokens
from semantilm.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples" / "audio"


def test_info_lists_variants(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "official-r100-v16384" in out and "1.35" in out


def test_encode_folder_with_the_offline_codec(tmp_path):
    assert main(["encode", str(EXAMPLES), "--codec", "tiny-random", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.tokens.npz"))
    assert [f.name for f in files] == ["sweep_stereo_22k.tokens.npz", "tone_440hz_16k.tokens.npz"]
    record = load_tokens(files[1])
    # 2 s rounds up to 2.08 s (a multiple of 0.16 s), 50 frames/s: 104 frames, as the official code counts.
    assert record.tokens.shape == (104, 2) and record.token_rate == 100
    assert record.source_sample_rate == 16000 and record.num_samples == 32000
    sweep = load_tokens(files[0])
    assert sweep.source_sample_rate == 22050 and sweep.num_samples == 24000


def test_encode_errors(tmp_path, capsys):
    assert main(["encode", str(tmp_path / "missing.wav"), "--codec", "tiny-random", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["encode", str(tmp_path / "empty"), "--codec", "tiny-random", "--out", str(tmp_path)]) == 2
    assert "holds no audio files" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....")
    assert main(["encode", str(bad), "--codec", "tiny-random", "--out", str(tmp_path)]) == 1
    assert "could not read audio file" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_token_file_round_trip_and_errors(tmp_path):
    from codec.token_file import TokenFile, save_tokens

    record = TokenFile(torch.tensor([[1, 2], [3, 4]]), "tiny-r100", 100, 64, 64, 321, 44100, "x.wav")
    path = save_tokens(tmp_path / "a.tokens.npz", record)
    assert torch.equal(load_tokens(path).tokens, record.tokens)
    assert load_tokens(path).num_samples == 321
    with pytest.raises(ValueError, match="must be \\[T, 2\\]"):
        save_tokens(tmp_path / "b.tokens.npz", TokenFile(torch.zeros(3, dtype=torch.long), "x", 100, 1, 1, 1, 1))
    (tmp_path / "junk.tokens.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable token file"):
        load_tokens(tmp_path / "junk.tokens.npz")
