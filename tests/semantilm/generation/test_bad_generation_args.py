"""Generation arguments through the Python API: bad numbers are a ``ValueError`` naming the argument before the
LM runs, and classifier-free guidance works with several return sequences in both guidance modes (beams
with guidance are refused)."""

from __future__ import annotations

import pytest
import torch

from semantilm.generation.generate import generate_audio, text_to_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=128)


@pytest.fixture
def setup(sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size())
    return build_lm(layout, TINY, seed=0).eval(), AudioTextTokenizer(sp, layout), fake_codec


BAD_NUMBERS = [
    # (keyword arguments of generate_audio, words the message must hold)
    ({"seconds": 0}, ["seconds", "0"]),
    ({"seconds": -1.0}, ["seconds", "-1.0"]),
    ({"seconds": float("nan")}, ["seconds", "nan"]),
    ({"seconds": float("inf")}, ["seconds", "inf"]),
    ({"guidance_scale": float("nan")}, ["guidance_scale", "nan"]),
    ({"guidance_scale": -2.0}, ["guidance_scale", "-2.0"]),
    ({"temperature": 0.0}, ["temperature", "0.0"]),
    ({"temperature": -1.0}, ["temperature", "-1.0"]),
    ({"top_k": -5}, ["top_k", "-5"]),
    ({"top_p": 0.0}, ["top_p", "0.0"]),
    ({"top_p": 1.5}, ["top_p", "1.5"]),
    ({"batch_size": 0}, ["batch_size", "0"]),
    ({"batch_size": -1}, ["batch_size", "-1"]),
    ({"num_return_sequences": 0}, ["num_return_sequences", "0"]),
]


@pytest.mark.parametrize(("kwargs", "words"), BAD_NUMBERS)
def test_bad_numbers_are_refused_naming_the_argument(setup, captions, kwargs, words):
    model, tok, codec = setup
    with pytest.raises(ValueError) as info:
        generate_audio(model, tok, codec, captions[:2], **{"seconds": 0.1, **kwargs})
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert codec.decode_calls == 0  # refused before anything was decoded


@pytest.mark.parametrize("mode", ["one_forward", "two_calls"])
def test_guidance_with_several_return_sequences(setup, captions, mode):
    model, tok, _ = setup
    greedy = dict(guidance_scale=2.5, do_sample=False, guidance_mode=mode)
    one, one_len = text_to_tokens(model, tok, captions[:2], 4, **greedy)
    three, three_len = text_to_tokens(model, tok, captions[:2], 4, num_return_sequences=3, **greedy)
    assert three.shape[0] == 6 and torch.equal(three_len, one_len.repeat_interleave(3))
    assert torch.equal(three[::3, : one.shape[1]], one)  # greedy copies of a prompt agree with one run
    torch.manual_seed(0)
    sampled, lengths = text_to_tokens(model, tok, captions[:1], 5, guidance_scale=2.5, temperature=2.0,
                                      num_return_sequences=4, guidance_mode=mode)
    assert sampled.shape[0] == 4 and bool(((lengths >= 1) & (lengths <= 5)).all())


def test_beams_with_guidance_are_refused_clearly(setup, captions):
    model, tok, _ = setup
    with pytest.raises(ValueError, match=r"beam search \(num_beams=2\) cannot be combined with classifier-free"):
        text_to_tokens(model, tok, captions[:1], 3, guidance_scale=3.0, num_beams=2, num_return_sequences=2)
