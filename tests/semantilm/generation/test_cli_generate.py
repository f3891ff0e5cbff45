"""``semantilm generate --num-return-sequences`` on a tiny LM saved beside the offline random codec."""

import pytest

from codec.token_file import load_tokens
from semantilm.cli.main import main
from semantilm.codec_api import load_codec
from semantilm.models.lm import LMConfig, build_lm, save_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=128)


@pytest.fixture
def checkpoint(tmp_path, sp_model_path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    codec = load_codec("tiny-random", 100, 16384, "cpu", None, decoder=False)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size())
    return save_lm(build_lm(layout, TINY, seed=0), layout, tmp_path / "lm", AudioTextTokenizer(sp, layout))


def test_num_return_sequences_writes_one_file_per_take(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen"
    base = ["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1",
            "--out", str(out), "--tokens-only", "--seed", "0"]
    assert main([*base, "--text", "a tone", "", "--num-return-sequences", "2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"text_{i:02d}_{k}.tokens.npz" for i in (0, 1) for k in (0, 1)]
    records = [load_tokens(out / n) for n in names]
    assert records[1].source == "generated from text: a tone" and records[2].source == "generated from text: "
    assert all(1 <= r.tokens.shape[0] <= 5 for r in records)
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it before the LM loads
        main([*base, "--text", "a tone", "--num-return-sequences", "0"])
    assert exit_info.value.code == 2
    assert "argument --num-return-sequences: must be an integer >= 1, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "words"), [(["--greedy"], "--greedy with --num-return-sequences 2"),
                                              (["--top-k", "1"], "--top-k 1 with --num-return-sequences 2")])
def test_takes_that_could_only_be_identical_are_a_usage_error(checkpoint, tmp_path, capsys, flags, words):
    out = tmp_path / "gen"
    code = main(["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1",
                 "--out", str(out), "--text", "a tone", "--num-return-sequences", "2", *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and "2 identical takes of every prompt" in err
    assert not out.exists()  # refused before anything is written
    assert main(["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1",
                 "--out", str(out), "--text", "a tone", "--tokens-only", *flags]) == 0  # one take is fine


def test_static_cache_and_a_bfloat16_decoder_write_the_clip(checkpoint, tmp_path, capsys):
    import soundfile as sf

    base = ["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.2",
            "--text", "a tone", "--seed", "0", "--steps", "2"]
    outs = {}
    for name, extra in (("default", []), ("static", ["--kv-cache", "static", "--decoder-dtype", "bfloat16"])):
        assert main([*base, "--out", str(tmp_path / name), *extra]) == 0
        outs[name] = load_tokens(tmp_path / name / "text_00.tokens.npz").tokens
        wave, rate = sf.read(tmp_path / name / "text_00.wav")
        assert rate == 16000 and len(wave) > 0 and abs(wave).max() > 0
    assert (outs["default"] == outs["static"]).all()  # the cache changes speed, not the ids
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "c"), "--compile"]) == 2
    assert "error: --compile needs --kv-cache static" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # refused before anything is written


def test_load_codec_casts_the_decoder_only(tmp_path):
    import torch

    codec = load_codec("tiny-random", 100, 16384, "cpu", None, decoder_dtype="bfloat16")
    assert next(codec.decoder.parameters()).dtype == torch.bfloat16
    assert {p.dtype for p in codec.decoder.vae.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in codec.decoder.vocoder.parameters()} == {torch.float32}  # no half-precision noise floor
    assert codec.acoustic.proj.weight.dtype == torch.float32  # the encoder keeps fp32
    with pytest.raises(ValueError, match="decoder_dtype must be one of .*'bfloat16'.* got 'int8'"):
        load_codec("tiny-random", 100, 16384, "cpu", None, decoder_dtype="int8")
