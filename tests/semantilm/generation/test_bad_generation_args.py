"""Generation settings through the Python API: bad numbers are a ``ValueError`` naming the setting when the
``SamplingSettings`` is made (before any LM runs), classifier-free guidance works with several return
sequences (beams with guidance are refused), and several takes that could only be identical are refused."""

from __future__ import annotations

import pytest
import torch

from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import text_to_tokens
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
    # (SamplingSettings fields, words the message must hold)
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
    ({"num_beams": 0}, ["num_beams", "0"]),
    ({"seed": -1}, ["seed", "-1"]),
]


@pytest.mark.parametrize(("kwargs", "words"), BAD_NUMBERS)
def test_bad_numbers_are_refused_naming_the_setting(kwargs, words):
    with pytest.raises(ValueError) as info:
        SamplingSettings(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_guidance_with_several_return_sequences(setup, captions):
    model, tok, _ = setup
    sampled = SamplingSettings(seconds=4 / tok.layout.frame_rate, guidance_scale=2.5, temperature=2.0, seed=0)
    repeated, repeated_len = text_to_tokens(model, tok, [c for c in captions[:2] for _ in range(3)], sampling=sampled)
    three, three_len = text_to_tokens(model, tok, captions[:2], sampling=sampled.replace(num_return_sequences=3))
    # n takes of a prompt are that prompt n times, each row with its own unconditional twin
    assert three.shape[0] == 6 and torch.equal(three, repeated) and torch.equal(three_len, repeated_len)


IDENTICAL_TAKES = [
    # (sampling settings, words the message must hold)
    ({"do_sample": False}, ["num_return_sequences=2", "do_sample=False", "identical takes"]),
    ({"top_k": 1}, ["num_return_sequences=2", "top_k=1", "identical takes"]),
]


@pytest.mark.parametrize(("sampling", "words"), IDENTICAL_TAKES)
def test_takes_that_could_only_be_identical_are_refused(setup, captions, sampling, words):
    """Greedy decoding, or sampling the likeliest id only, with several takes per prompt: a ValueError
    naming both settings when the settings are made, so no entry point can run them."""
    model, tok, _ = setup
    with pytest.raises(ValueError) as info:
        SamplingSettings(num_return_sequences=2, **sampling)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    # one take, or distinct beams, stay allowed
    short = SamplingSettings(seconds=2 / tok.layout.frame_rate, guidance_scale=1.0, **sampling)
    text_to_tokens(model, tok, captions[:1], sampling=short)
    text_to_tokens(model, tok, captions[:1], sampling=short.replace(num_beams=2, num_return_sequences=2))
