"""Progress of the Python generation API: bars over the LM's frames and the decoder's steps on a
terminal (``with terminal:``, tests/conftest.py), nothing off one, and ``progress=`` to choose."""

from __future__ import annotations

import pytest
import torch

from codec import DecodeSettings, SemantiCodec
from semantilm.generation.generate import continue_audio, generate_audio
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import text_to_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

FAST = DecodeSettings(sampler="dpm++2m", steps=1)
CLIP = SamplingSettings(seconds=0.3, seed=0)
MORE = SamplingSettings(seconds=0.2, seed=0)


@pytest.fixture(scope="module")
def setup(sp_model_path):
    import sentencepiece as spm

    codec = SemantiCodec.tiny_random()
    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size())
    config = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=128)
    return build_lm(layout, config, seed=0).eval(), AudioTextTokenizer(sp, layout), codec


def test_generate_audio_shows_the_lm_and_the_decoder_on_a_terminal(setup, captions, terminal, capsys):
    model, tok, codec = setup
    with terminal:
        generate_audio(model, tok, codec, captions[:1], sampling=CLIP, decode=FAST)
    drawn = terminal.getvalue()
    assert "generate" in drawn and "frame" in drawn and "dpm++2m (1 windows)" in drawn
    with terminal:
        generate_audio(model, tok, codec, captions[:1], sampling=CLIP, decode=FAST, progress=False)
        continue_audio(model, tok, codec, [torch.zeros(3200)], 16000, sampling=MORE, decode=FAST, progress=False)
    assert terminal.getvalue() == drawn  # switched off
    generate_audio(model, tok, codec, captions[:1], sampling=CLIP, decode=FAST)
    continue_audio(model, tok, codec, [torch.zeros(3200)], 16000, sampling=MORE, decode=FAST)
    assert capsys.readouterr().err == ""  # off a terminal: nothing


def test_token_generation_shows_its_bar_by_default_on_a_terminal(setup, captions, terminal):
    model, tok, _ = setup
    with terminal:
        text_to_tokens(model, tok, captions[:1], sampling=SamplingSettings(seconds=0.16, do_sample=False))
    assert "generate" in terminal.getvalue()
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        generate_audio(model, tok, setup[2], captions[:1], sampling=CLIP, progress="on")
