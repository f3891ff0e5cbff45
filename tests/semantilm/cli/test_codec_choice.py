"""A codec whose files fix its variant (the embedded ``tiny``, ``save_pretrained`` folders) refuses another
token rate or semantic vocabulary instead of ignoring it: in Python (``from_pretrained``, ``load_codec``) and
on the command line (``--token-rate`` / ``--vocab``, exit 2 before any model loads). What a checkpoint
recorded as its codec's (possibly stale) options still loads it, and ``info`` prints only options that apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from codec import SemantiCodec
from semantilm.cli.main import main
from semantilm.codec_api import load_codec

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "audio" / "tone_440hz_16k.wav"


@pytest.fixture(scope="module")
def folder_25(tmp_path_factory) -> Path:
    """A save_pretrained folder of a 25 tokens/s codec."""
    folder = tmp_path_factory.mktemp("codec") / "r25"
    SemantiCodec.tiny_random(25, with_decoder=False).save_pretrained(folder)
    return folder


def test_the_embedded_codec_refuses_another_rate_or_vocabulary():
    for kwargs, asked in ((dict(token_rate=25), "token_rate=25"), (dict(token_rate=100), "token_rate=100"),
                          (dict(semantic_vocab_size=4096), "semantic_vocab_size=4096")):
        with pytest.raises(ValueError, match=f"codec 'tiny' runs at 50 tokens/s .*{asked} was asked"):
            SemantiCodec.from_pretrained("tiny", **kwargs)
    with pytest.raises(ValueError, match="codec 'tiny' runs at 50 tokens/s .*token_rate=25 was asked"):
        load_codec("tiny", 25)
    assert SemantiCodec.from_pretrained("tiny", token_rate=50, semantic_vocab_size=64).config.token_rate == 50
    assert load_codec("tiny").config.token_rate == 50


def test_a_saved_folder_refuses_another_rate(folder_25):
    for name in (folder_25, str(folder_25)):
        with pytest.raises(ValueError, match=f"codec {str(folder_25)!r} .*runs at 25 tokens/s .*token_rate=100"):
            SemantiCodec.from_pretrained(name, token_rate=100, load_decoder=False)
    assert SemantiCodec.from_pretrained(folder_25, load_decoder=False).config.token_rate == 25


def test_one_codec_one_record(folder_25):
    """What is recorded about how to load a codec does not depend on whether the defaults were spelled out."""
    from codec.checkpoints import codec_options

    assert codec_options("haoheliu/SemantiCodec", None, None) == codec_options("haoheliu/SemantiCodec", 100, 16384)
    assert codec_options("tiny-random", None, None) == codec_options("tiny-random", 100, None) == (100, None)
    assert codec_options("tiny", None, None) == codec_options("tiny", 50, 64) == (None, None)
    assert codec_options(str(folder_25), 25, None) == (None, None)


def test_a_recipe_naming_the_embedded_codec_takes_its_rate(tmp_path):
    """A recipe's unset token rate is the codec's own, not the official default the codec would refuse."""
    from semantilm.training.recipe_config import CodecSection
    from semantilm.training.token_codec import resolve_recipe_codec

    section = resolve_recipe_codec(CodecSection(name="tiny"), "synthetic")
    assert (section.token_rate, section.vocab) == (None, None)
    assert load_codec(section.name, section.token_rate, section.vocab, decoder=False).config.token_rate == 50
    asked = resolve_recipe_codec(CodecSection(name="tiny", token_rate=25), "synthetic")
    with pytest.raises(ValueError, match="codec 'tiny' runs at 50 tokens/s .*token_rate=25"):
        load_codec(asked.name, asked.token_rate, asked.vocab, decoder=False)


def test_bad_rate_values_are_named():
    with pytest.raises(TypeError, match=r"token_rate must be an int or None, got str \('50'\)"):
        SemantiCodec.from_pretrained("tiny", token_rate="50")
    with pytest.raises(ValueError, match="token_rate=75 is not supported"):
        SemantiCodec.from_pretrained("tiny-random", token_rate=75)


@pytest.fixture
def no_model_loads(monkeypatch):
    import codec.model
    import semantilm.codec_api

    def refuse(*args, **kwargs):
        raise AssertionError("a codec loaded before the arguments were checked")

    monkeypatch.setattr(semantilm.codec_api, "load_codec", refuse)
    monkeypatch.setattr(codec.model.SemantiCodec, "from_pretrained", classmethod(refuse))


@pytest.mark.parametrize("command", ["encode", "eval-codec", "tokenize"])
@pytest.mark.parametrize("flags,says", [
    (["--codec", "tiny", "--token-rate", "25"], ["'tiny'", "50 tokens/s", "token_rate=25"]),
    (["--codec", "tiny", "--token-rate", "100"], ["'tiny'", "50 tokens/s", "token_rate=100"]),
    (["--codec", "tiny", "--vocab", "4096"], ["'tiny'", "semantic_vocab_size=4096"]),
    (["--codec", "tiny-random", "--vocab", "4096"], ["tiny-random", "--vocab 4096"]),
])
def test_the_command_line_refuses_before_loading(command, flags, says, tmp_path, capsys, no_model_loads):
    argv = {
        "encode": ["encode", str(EXAMPLE), "--out", str(tmp_path / "o")],
        "eval-codec": ["eval-codec", str(EXAMPLE), "--out", str(tmp_path / "e.json")],
        "tokenize": ["tokenize", "--dataset", "synthetic", "--out", str(tmp_path / "o")],
    }[command]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert all(s in err for s in says), err
    assert not list(tmp_path.iterdir())


def test_a_saved_folder_on_the_command_line(folder_25, tmp_path, capsys, no_model_loads):
    assert main(["encode", str(EXAMPLE), "--codec", str(folder_25), "--token-rate", "100",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(folder_25) in err and "25 tokens/s" in err and "token_rate=100" in err


def test_decode_without_codec_refuses_a_rate_the_token_files_do_not_have(tmp_path, capsys):
    tokens = tmp_path / "tok"
    assert main(["encode", str(EXAMPLE), "--codec", "tiny", "--out", str(tokens)]) == 0
    assert main(["decode", str(tokens), "--token-rate", "25", "--out", str(tmp_path / "wav")]) == 2
    err = capsys.readouterr().err
    assert "made by codec 'tiny' with --token-rate 50, not 25" in err
    assert not (tmp_path / "wav").exists()


def test_a_recorded_reference_loads_and_info_prints_what_applies(tmp_path, capsys):
    """Checkpoints recorded the recipe's default rate (100) beside 'tiny'; that still loads the codec."""
    from semantilm.models.hub import CodecReference, save_codec_reference
    from semantilm.tokens.layout import AudioTokenLayout

    tiny = load_codec("tiny", decoder=False)
    folder = tmp_path / "lm"
    AudioTokenLayout.for_codec(tiny, text_vocab_size=32).save_pretrained(folder)
    save_codec_reference(folder, CodecReference("tiny", 100, 16384, "tiny"))
    assert main(["info", "--checkpoint", str(folder)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("decode with"))
    assert row.split(None, 2)[2] == "--codec tiny"
    assert CodecReference("tiny", 100, 16384, "tiny").load(decoder=False).config.token_rate == 50
    assert CodecReference("tiny-random", 50, 16384, "tiny-r50").command_line() == "--codec tiny-random --token-rate 50"
    official = CodecReference("haoheliu/SemantiCodec", 25, 8192, "official-r25-v8192")
    assert official.command_line() == "--codec haoheliu/SemantiCodec --token-rate 25 --vocab 8192"
    with pytest.raises(ValueError, match="trained with 'other'"):
        CodecReference("tiny", 100, 16384, "other").load(decoder=False)
