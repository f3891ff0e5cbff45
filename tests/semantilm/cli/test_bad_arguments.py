"""Bad command-line arguments exit 2 with ``argument --flag: <what is allowed>, got <value>`` before any model
loads; the library functions refuse the same values with a ``ValueError`` in the same words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semantilm.cli.main import main

EXAMPLE = Path(__file__).parents[3] / "examples" / "audio" / "tone_440hz_16k.wav"


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any codec or LM loads (argument errors must come first)."""
    import codec.model
    import semantilm.codec_api
    import semantilm.demo
    import semantilm.models.lm

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(semantilm.codec_api, "load_codec", refuse)
    monkeypatch.setattr(semantilm.models.lm, "load_lm", refuse)
    monkeypatch.setattr(codec.model.SemantiCodec, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(semantilm.demo, "run_demo", refuse)


def command(name: str, tmp: Path) -> list[str]:
    """A command line that would run (and load a model) but for the flag under test."""
    lm = ["--checkpoint", str(tmp / "lm")]
    return {
        "encode": ["encode", str(EXAMPLE), "--codec", "tiny-random", "--out", str(tmp / "o")],
        "decode": ["decode", str(tmp), "--codec", "tiny-random", "--out", str(tmp / "o")],
        "eval-codec": ["eval-codec", str(EXAMPLE), "--codec", "tiny-random", "--out", str(tmp / "e.json")],
        "export-codec": ["export-codec", str(tmp / "c"), str(tmp / "o")],
        "tokenize": ["tokenize", "synthetic", "--codec", "tiny-random", "--out", str(tmp / "o")],
        "generate": ["generate", *lm, "--text", "a tone", "--codec", "tiny-random", "--out", str(tmp / "o")],
        "eval-lm": ["eval-lm", *lm, "--dataset", str(tmp), "--out", str(tmp / "e.json")],
        "demo": ["demo", "--codec", "tiny-random", "--out", str(tmp / "demo")],
    }[name]


BAD_FLAGS = [
    # (command, flag, value, what the message says is allowed)
    ("encode", "--batch-size", "-1", "must be an integer >= 1"),
    ("encode", "--batch-size", "0", "must be an integer >= 1"),
    ("encode", "--batch-size", "two", "must be an integer >= 1"),
    ("encode", "--batch-size", "2.5", "must be an integer >= 1"),
    ("decode", "--batch-size", "0", "must be an integer >= 1"),
    ("decode", "--steps", "0", "must be an integer between 1 and 1000"),
    ("decode", "--steps", "1001", "must be an integer between 1 and 1000"),
    ("decode", "--seed", "-1", "must be an integer between 0 and 4294967295"),
    ("eval-codec", "--batch-size", "-3", "must be an integer >= 1"),
    ("eval-codec", "--max-examples", "0", "must be an integer >= 1"),
    ("eval-codec", "--steps", "-5", "must be an integer between 1 and 1000"),
    ("export-codec", "--max-mb", "0", "must be a finite number > 0"),
    ("export-codec", "--cfg-scale", "nan", "must be a finite number >= 1"),
    ("export-codec", "--cfg-scale", "0.5", "must be a finite number >= 1"),
    ("tokenize", "--batch-size", "-1", "must be an integer >= 1"),
    ("tokenize", "--shard-size", "0", "must be an integer >= 1"),
    ("tokenize", "--num-workers", "-1", "must be an integer >= 0"),
    ("tokenize", "--max-examples", "0", "must be an integer >= 1"),
    ("tokenize", "--synthetic-examples", "0", "must be an integer >= 1"),
    ("tokenize", "--synthetic-seconds", "0", "must be a finite number > 0"),
    ("generate", "--seconds", "0", "must be a finite number > 0"),
    ("generate", "--seconds", "-2", "must be a finite number > 0"),
    ("generate", "--seconds", "inf", "must be a finite number > 0"),
    ("generate", "--seconds", "nan", "must be a finite number > 0"),
    ("generate", "--temperature", "0", "must be a finite number > 0"),
    ("generate", "--top-k", "-5", "must be an integer >= 0"),
    ("generate", "--guidance", "-1", "must be a finite number >= 0"),
    ("generate", "--guidance", "nan", "must be a finite number >= 0"),
    ("generate", "--num-return-sequences", "0", "must be an integer >= 1"),
    ("generate", "--steps", "0", "must be an integer between 1 and 1000"),
    ("eval-lm", "--batch-size", "0", "must be an integer >= 1"),
    ("eval-lm", "--max-length", "-1", "must be an integer >= 1"),
    ("demo", "--train-steps", "0", "must be an integer >= 1"),
    ("demo", "--decode-steps", "0", "must be an integer between 1 and 1000"),
    ("demo", "--guidance-scale", "-1", "must be a finite number >= 0"),
    ("demo", "--top-k", "0", "must be an integer >= 1"),
    ("demo", "--takes", "0", "must be an integer >= 1"),
    ("demo", "--seed", "-1", "must be an integer between 0 and 4294967295"),
]


@pytest.mark.parametrize(("name", "flag", "value", "allowed"), BAD_FLAGS)
def test_bad_numbers_exit_2_before_any_model_loads(no_model_loads, tmp_path, capsys, name, flag, value, allowed):
    with pytest.raises(SystemExit) as exit_info:
        main([*command(name, tmp_path), flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: {allowed}, got '{value}'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_the_console_script_exits_2_too(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from semantilm.cli.main import main; sys.exit(main())",
         "encode", str(EXAMPLE), "--codec", "tiny-random", "--out", str(tmp_path), "--batch-size", "-1"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 2 and "argument --batch-size: must be an integer >= 1, got '-1'" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_library_refuses_the_same_values_in_the_same_words(tmp_path):
    from codec import SemantiCodec
    from codec.compress import compress
    from plumbing.checks import check_float, check_int

    model = SemantiCodec.tiny_random(100, with_decoder=False)
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1, got -1\.$"):
        compress(model, [EXAMPLE], tmp_path / "o", batch_size=-1)
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1, got 0\.$"):
        compress(model, [EXAMPLE], tmp_path / "o", batch_size=0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"^seconds must be a finite number > 0, got nan\.$"):
        check_float(float("nan"), "seconds", minimum=0, above=True)
    with pytest.raises(TypeError, match=r"^top_k must be an integer >= 0, got '5' \(str\)\.$"):
        check_int("5", "top_k", minimum=0)
    assert check_int(np.int64(3), "n", minimum=1) == 3 and check_int(4.0, "n") == 4


def test_generate_prompt_errors_come_before_the_model(no_model_loads, tmp_path, capsys):
    base = command("generate", tmp_path)[:3]  # generate --checkpoint DIR
    out = ["--out", str(tmp_path / "o"), "--codec", "tiny-random"]
    assert main([*base, *out, "--text", "a", "--audio", str(EXAMPLE)]) == 2
    assert "not both and not neither" in capsys.readouterr().err
    assert main([*base, *out]) == 2
    assert main([*base, *out, "--audio", str(tmp_path / "missing.wav")]) == 2
    assert "audio prompt" in capsys.readouterr().err
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF no audio")
    assert main([*base, *out, "--audio", str(broken)]) == 1  # unreadable input data: exit 1, still before the LM
    assert f"could not read audio file {str(broken)!r}" in capsys.readouterr().err
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    assert main([*base, *out, "--audio", str(empty)]) == 1
    assert f"audio prompt {str(empty)!r} is empty" in capsys.readouterr().err


def test_decode_of_a_damaged_token_file_fails_before_the_codec_loads(no_model_loads, tmp_path, capsys):
    bad = tmp_path / "tok" / "x.tokens.npz"
    bad.parent.mkdir()
    np.savez(bad, tokens=np.zeros((4, 2)), meta=np.array("{}"))
    assert main(["decode", str(bad.parent), "--codec", "tiny-random", "--out", str(tmp_path / "wav")]) == 1
    assert str(bad) in capsys.readouterr().err and not (tmp_path / "wav").exists()


def test_encode_warns_about_clipping_on_one_line(tmp_path, capsys):
    loud = tmp_path / "loud.wav"
    sf.write(loud, 1.5 * np.sin(np.arange(8000) / 5).astype(np.float32), 16000, subtype="FLOAT")
    assert main(["encode", str(loud), "--codec", "tiny-random", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert f"semantilm encode: warning: audio file {str(loud)!r} has" in err and "beyond [-1, 1]" in err
