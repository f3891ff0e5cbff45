"""Outputs never collide and are never replaced silently: encode / decode mirror the inputs' relative paths,
and encode, decode, generate and the demo refuse (exit 2, before any model loads) to replace a file
unless ``--overwrite`` / ``overwrite=True``; a refused run leaves every file as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from plumbing.io import OutputExistsError
from semantilm.cli.main import main


def tone(path: Path, freq: float, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * np.arange(rate // 2) / rate), rate)
    return path


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def same_names(tmp_path) -> Path:
    """a/x.wav, b/x.wav and x.flac: three inputs that a flat naming would write to one x.tokens.npz."""
    src = tmp_path / "src"
    tone(src / "a" / "x.wav", 300)
    tone(src / "b" / "x.wav", 600)
    tone(src / "x.flac", 900)
    return src


@pytest.fixture
def loads(monkeypatch):
    """Counts codec loads of the command line (a refused run must not load one)."""
    import semantilm.codec_api

    calls = []
    real = semantilm.codec_api.load_codec

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(semantilm.codec_api, "load_codec", counting)
    return calls


def test_same_file_names_in_a_folder_give_distinct_token_files_and_wavs(same_names, tmp_path, capsys):
    tokens, wavs = tmp_path / "tok", tmp_path / "wav"
    assert main(["encode", str(same_names), "--codec", "tiny-random", "--out", str(tokens)]) == 0
    assert "wrote 3 token files" in capsys.readouterr().out
    assert sorted(str(p.relative_to(tokens)) for p in tokens.rglob("*.npz")) == [
        "a/x.tokens.npz", "b/x.tokens.npz", "x.tokens.npz"]
    from codec.token_file import load_tokens

    sources = {load_tokens(p).source for p in tokens.rglob("*.npz")}
    assert sources == {str(same_names / "a" / "x.wav"), str(same_names / "b" / "x.wav"), str(same_names / "x.flac")}
    args = ["decode", str(tokens), "--codec", "tiny-random", "--steps", "1", "--sampler", "dpmsolver++",
            "--out", str(wavs)]
    assert main(args) == 0
    assert sorted(str(p.relative_to(wavs)) for p in wavs.rglob("*.wav")) == ["a/x.wav", "b/x.wav", "x.wav"]


@pytest.mark.parametrize("kind", ["encode", "decode"])
def test_a_second_run_into_the_same_folder_is_refused_unless_overwrite(same_names, tmp_path, capsys, loads, kind):
    """Another run's outputs are refused (exit 2, before any codec loads); the same command again keeps its own."""
    tokens = tmp_path / "tok"
    assert main(["encode", str(same_names), "--codec", "tiny-random", "--out", str(tokens)]) == 0
    if kind == "encode":
        args = ["encode", str(same_names), "--codec", "tiny-random", "--out", str(tokens)]
        other = [*args, "--token-rate", "50"]  # another codec variant
        out = tokens
    else:
        out = tmp_path / "wav"
        args = ["decode", str(tokens), "--codec", "tiny-random", "--steps", "1", "--sampler", "dpmsolver++",
                "--out", str(out)]
        other = [*args[:-2], "--steps", "2", "--out", str(out)]  # other settings
        assert main(args) == 0
    before, count = snapshot(out), len(loads)
    capsys.readouterr()
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "3 of the 3 output files already exist" in err and "--overwrite" in err
    assert snapshot(out) == before and len(loads) == count  # nothing replaced, no codec loaded
    assert main(args) == 0  # the same command: its outputs are all there, nothing is done
    assert "nothing to " + kind in capsys.readouterr().out
    assert snapshot(out) == before and len(loads) == count
    assert main([*other, "--overwrite"]) == 0
    assert set(snapshot(out)) == set(before)


def test_compress_and_decompress_take_overwrite(same_names, tmp_path):
    from codec import SemantiCodec
    from codec.compress import compress, decompress

    model = SemantiCodec.tiny_random(100)
    written = compress(model, [same_names / "x.flac"], tmp_path / "tok")
    before = snapshot(tmp_path / "tok")
    with pytest.raises(OutputExistsError, match="1 of the 1 output files already exist"):
        compress(SemantiCodec.tiny_random(50), [same_names / "x.flac"], tmp_path / "tok")  # another codec: refused
    assert compress(model, [same_names / "x.flac"], tmp_path / "tok") == []  # the same run: kept
    assert isinstance(OutputExistsError("x"), FileExistsError) and snapshot(tmp_path / "tok") == before
    assert compress(model, [same_names / "x.flac"], tmp_path / "tok", overwrite=True) == written
    settings = dict(steps=1, sampler="dpmsolver++")
    from codec import DecodeSettings

    decompress(model, written, tmp_path / "wav", DecodeSettings(**settings))
    with pytest.raises(OutputExistsError):
        decompress(model, written, tmp_path / "wav", DecodeSettings(sampler="dpmsolver++", steps=2))
    decompress(model, written, tmp_path / "wav", DecodeSettings(**settings), overwrite=True)


# ----- generate ------------------------------------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path, sp_model_path):
    import sentencepiece as spm

    from semantilm.codec_api import load_codec
    from semantilm.models.lm import LMConfig, build_lm, save_lm
    from semantilm.tokens.layout import AudioTokenLayout
    from semantilm.tokens.tokenizer import AudioTextTokenizer

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    codec = load_codec("tiny-random", 100, 16384, "cpu", None, decoder=False)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size())
    tiny = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                    max_position_embeddings=128)
    return save_lm(build_lm(layout, tiny, seed=0), layout, tmp_path / "lm", AudioTextTokenizer(sp, layout))


def test_generate_refuses_to_replace_earlier_outputs(checkpoint, tmp_path, capsys, monkeypatch):
    out = tmp_path / "gen"
    base = ["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1",
            "--out", str(out), "--seed", "0", "--steps", "1", "--sampler", "dpmsolver++", "--text", "a tone"]
    assert main(base) == 0
    before = snapshot(out)
    assert sorted(before) == ["metadata.csv", "text_00.tokens.npz", "text_00.wav"]  # file_name,caption of the wav
    import semantilm.models.lm

    real = semantilm.models.lm.load_lm
    monkeypatch.setattr(semantilm.models.lm, "load_lm", lambda *a, **k: pytest.fail("the LM loaded"))
    capsys.readouterr()
    assert main(base) == 2
    assert "already exist" in capsys.readouterr().err and snapshot(out) == before
    assert main([*base, "--tokens-only"]) == 2  # the token file alone is reason enough
    monkeypatch.setattr(semantilm.models.lm, "load_lm", real)
    assert main([*base, "--overwrite"]) == 0
    assert sorted(snapshot(out)) == sorted(before)


def test_generation_names_are_distinct():
    from semantilm.generation.outputs import generation_names

    assert generation_names(texts=["a", "b"]) == ["text_00", "text_01"]
    assert generation_names(audio=["a/x.wav", "y.wav"]) == ["x_cont", "y_cont"]
    assert generation_names(audio=["a/x.wav", "b/x.wav"]) == ["audio_00_x_cont", "audio_01_x_cont"]
    assert generation_names(texts=["a"], takes=2) == ["text_00_0", "text_00_1"]
    with pytest.raises(ValueError, match="not both"):
        generation_names(texts=["a"], audio=["x.wav"])


def test_generation_output_save_refuses_collisions(tmp_path):
    from semantilm.generation.outputs import AudioGenerationOutput

    out = AudioGenerationOutput(torch.zeros(2, 800), torch.tensor([800, 400]), 16000,
                                torch.zeros(2, 5, 2, dtype=torch.long), torch.tensor([5, 3]))
    paths = out.save(tmp_path, ["a", "b"])
    assert [sf.info(p).frames for p in paths] == [800, 400]
    before = snapshot(tmp_path)
    for names, error, words in [
        (["a", "b"], OutputExistsError, "2 of the 2 output files already exist"),
        (["c", "c"], ValueError, "names must be distinct"),
        (["c"], ValueError, "one name per clip (2)"),
        (["../c", "d"], ValueError, "plain file names"),
    ]:
        with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
            out.save(tmp_path, names)
    assert snapshot(tmp_path) == before
    assert out.save(tmp_path, ["a", "b"], overwrite=True) == paths


# ----- demo ----------------------------------------------------------------------------------------------
def test_demo_refuses_a_folder_with_other_files(tmp_path, capsys, monkeypatch):
    import semantilm.codec_api
    from semantilm.demo import MARKER, prepare_output_dir

    monkeypatch.setattr(semantilm.codec_api, "load_codec", lambda *a, **k: pytest.fail("the codec loaded"))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert main(["demo", "--codec", "tiny-random", "--out", str(folder), "--train-steps", "1"]) == 2
    assert "holds files that an earlier demo did not write" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"] and (folder / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        prepare_output_dir(tmp_path / "file")
    assert prepare_output_dir(folder, overwrite=True) == folder and (folder / MARKER).is_file()
    prepare_output_dir(folder)  # now an earlier demo's folder: allowed
    old = tmp_path / "old_demo"  # a demo folder from before the marker: its report.json says so
    old.mkdir()
    (old / "report.json").write_text('{"config": {}, "pitch_accuracy": 1.0, "prompts": []}')
    assert prepare_output_dir(old) == old
    assert prepare_output_dir(tmp_path / "new" / "demo").is_dir()
