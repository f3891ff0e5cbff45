"""Every command that writes to ``--out`` (or an output folder argument) refuses a path it cannot write with a
message that names the path and says why (exit 2, before any model loads), never a raw ``[Errno ..]``:
an existing file where a folder is meant (or a folder where a file is meant), a path under a file, and a
location where no file can be created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semantilm.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "audio" / "tone_440hz_16k.wav"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "tok"
    assert main(["encode", str(EXAMPLE), "--codec", "tiny-random", "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def no_model_loads(tokens, monkeypatch):
    """Fail the test if a codec or LM loads: the output path is checked first."""
    import codec.model
    import semantilm.codec_api
    import semantilm.demo
    import semantilm.models.lm

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the output path was checked")

    monkeypatch.setattr(semantilm.codec_api, "load_codec", refuse)
    monkeypatch.setattr(semantilm.models.lm, "load_lm", refuse)
    monkeypatch.setattr(codec.model.SemantiCodec, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(semantilm.demo, "run_demo", refuse)


def unwritable_folder(tmp_path: Path) -> Path:
    """An existing folder in which no file can be created (permissions; for root, which ignores them, the
    kernel's /sys)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        import tempfile

        with tempfile.TemporaryFile(dir="/sys"):
            pytest.skip("no folder refuses new files here")
    except OSError:
        return Path("/sys")


def commands(tmp_path: Path, out: Path, tokens: Path) -> dict[str, list[str]]:
    lm = tmp_path / "lm"
    lm.mkdir(exist_ok=True)
    return {
        "encode": ["encode", str(EXAMPLE), "--codec", "tiny-random", "--out", str(out)],
        "decode": ["decode", str(tokens), "--codec", "tiny-random", "--steps", "1", "--out", str(out)],
        "generate": ["generate", "--checkpoint", str(lm), "--text", "a tone", "--codec", "tiny-random", "--out", str(out)],
        "demo": ["demo", "--codec", "tiny-random", "--out", str(out)],
        "export-codec": ["export-codec", str(ROOT / "codec" / "pretrained" / "tiny"), str(out)],
        "eval-codec": ["eval-codec", str(EXAMPLE), "--codec", "tiny-random", "--out", str(out / "scores.json")],
        "eval-lm": ["eval-lm", "--checkpoint", str(lm), "--dataset", str(tokens), "--out", str(out / "lm.json")],
        "eval-generation": ["eval-generation", str(tokens), "--metrics", "clap", "--out", str(out / "gen.json")],
    }


FOLDER_COMMANDS = ["encode", "decode", "generate", "demo", "export-codec"]
ALL_COMMANDS = [*FOLDER_COMMANDS, "eval-codec", "eval-lm", "eval-generation"]


def check_refusal(capsys, argv: list[str], names: list[str], why: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Errno" not in err and why in err, err
    assert all(repr(name) in err for name in names), err


@pytest.mark.parametrize("name", FOLDER_COMMANDS)
def test_an_out_folder_that_is_a_file(name, tmp_path, capsys, tokens, no_model_loads):
    target = tmp_path / "taken"
    target.write_text("keep me")
    argv = commands(tmp_path, target, tokens)[name]
    check_refusal(capsys, argv, [str(target)], "is a file")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("name", ALL_COMMANDS)
def test_an_out_under_a_file(name, tmp_path, capsys, tokens, no_model_loads):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    argv = commands(tmp_path, blocker / "sub", tokens)[name]
    check_refusal(capsys, argv, [str(blocker)], "is a file, not a folder")
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("name", ALL_COMMANDS)
def test_an_out_where_nothing_can_be_written(name, tmp_path, capsys, tokens, no_model_loads):
    folder = unwritable_folder(tmp_path)
    argv = commands(tmp_path, folder / "semantilm-out", tokens)[name]
    check_refusal(capsys, argv, [str(folder)], "cannot be written")


@pytest.mark.parametrize("name", ["eval-codec", "eval-lm", "eval-generation"])
def test_a_json_out_that_is_a_folder(name, tmp_path, capsys, tokens, no_model_loads):
    argv = commands(tmp_path, tmp_path, tokens)[name]
    folder = Path(argv[argv.index("--out") + 1])
    folder.mkdir()
    check_refusal(capsys, argv, [str(folder)], "is a folder")
