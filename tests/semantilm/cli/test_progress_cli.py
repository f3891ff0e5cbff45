"""The long commands show progress on a terminal and print nothing extra off one.

``with terminal:`` (tests/conftest.py) makes stderr a stream that says it is a terminal; pytest's
captured stderr is not one, so there the commands must leave stderr empty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semantilm.cli.main import main

CODEC = ["--codec", "tiny-random"]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture
def wavs(tmp_path) -> list[str]:
    paths = []
    for k, freq in enumerate((300, 600)):
        path = tmp_path / "src" / f"tone{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.3 * np.sin(2 * np.pi * freq * np.arange(8000) / 16000), 16000)
        paths.append(str(path))
    return paths


def run(args: list[str], terminal=None) -> None:
    if terminal is None:
        assert main(args) == 0
        return
    with terminal:
        assert main(args) == 0


def test_encode_decode_and_eval_codec(wavs, tmp_path, terminal, capsys):
    """On a terminal: the batches of encode, the UNet steps and the VAE + vocoder stage of decode,
    the clips of eval-codec. Off one: nothing on stderr."""
    decode = ["--steps", "2", "--sampler", "dpm++2m", *CODEC]
    for where, term in (("tty", terminal), ("pipe", None)):
        tokens, out = tmp_path / f"tok_{where}", tmp_path / f"wav_{where}"
        run(["encode", *wavs, "--out", str(tokens), "--batch-size", "1", *CODEC], term)
        run(["decode", str(tokens), "--out", str(out), *decode], term)
        run(["eval-codec", *wavs, "--out", str(tmp_path / f"{where}.json"), "--metrics", "mel", *decode], term)
        if term is None:
            assert capsys.readouterr().err == ""
    drawn = terminal.getvalue()
    for words in ("encode:", "/2 [", "dpm++2m (2 windows)", "VAE + vocoder", "eval-codec", "clip"):
        assert words in drawn, words


def test_generate_shows_the_lm_and_the_decoder(tmp_path, sp_model_path, terminal, capsys):
    import sentencepiece as spm

    from codec.model import SemantiCodec
    from semantilm.models.lm import LMConfig, build_lm, save_lm
    from semantilm.tokens.layout import AudioTokenLayout
    from semantilm.tokens.tokenizer import AudioTextTokenizer

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(SemantiCodec.tiny_random(with_decoder=False), text_vocab_size=sp.get_piece_size())
    config = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=128)
    checkpoint = save_lm(build_lm(layout, config, seed=0), layout, tmp_path / "lm", AudioTextTokenizer(sp, layout))
    capsys.readouterr()
    base = ["generate", "--checkpoint", str(checkpoint), *CODEC, "--text", "a tone", "--seconds", "0.5",
            "--steps", "1", "--seed", "0"]
    run([*base, "--out", str(tmp_path / "tty")], terminal)
    drawn = terminal.getvalue()
    assert "generate" in drawn and "frame" in drawn  # the LM's frames
    assert "ddim (1 windows)" in drawn  # the decoder's steps
    run([*base, "--out", str(tmp_path / "pipe")])
    assert capsys.readouterr().err == ""  # not even transformers' weight-loading bar


def test_the_demo_trains_with_a_bar_on_a_terminal_only(tmp_path, terminal):
    from semantilm.demo import DemoConfig, _recipe_config

    config = DemoConfig(output_dir=str(tmp_path / "demo"))
    assert _recipe_config(config, Path("data"), Path("lm")).train.disable_tqdm
    with terminal:
        assert not _recipe_config(config, Path("data"), Path("lm")).train.disable_tqdm


def test_tokenize_and_save_lm(wavs, tmp_path, terminal, capsys):
    """tokenize's clip bar and the LM's weight-writing bar: on a terminal only."""
    from codec.model import SemantiCodec
    from semantilm.models.lm import LMConfig, build_lm, save_lm
    from semantilm.tokens.layout import AudioTokenLayout

    folder = str(Path(wavs[0]).parent)
    run(["tokenize", folder, "--out", str(tmp_path / "tok_tty"), *CODEC], terminal)
    assert "tokenize 1/1" in terminal.getvalue()
    capsys.readouterr()
    run(["tokenize", folder, "--out", str(tmp_path / "tok_pipe"), *CODEC])
    assert capsys.readouterr().err == ""

    layout = AudioTokenLayout.for_codec(SemantiCodec.tiny_random(with_decoder=False), text_vocab_size=8)
    config = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=64)
    save_lm(build_lm(layout, config, seed=0), layout, tmp_path / "lm")
    assert capsys.readouterr().err == ""
