"""Generation arguments through the Python API: bad numbers are a ``ValueError`` naming the argument before the
LM runs, classifier-free guidance works with several return sequences in both guidance modes (beams
with guidance are refused), and several takes that could only be identical are refused."""

from __future__ import annotations

import pytest
import torch

from semantilm.generation.generate import (
    continue_audio,
    continue_tokens,
    generate_audio,
    generate_tokens,
    text_to_tokens,
)
from semantilm.generation.stream import continue_audio_stream, generate_audio_stream
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
    sampled = dict(guidance_scale=2.5, guidance_mode=mode, temperature=2.0)
    torch.manual_seed(0)
    repeated, repeated_len = text_to_tokens(model, tok, [c for c in captions[:2] for _ in range(3)], 4, **sampled)
    torch.manual_seed(0)
    three, three_len = text_to_tokens(model, tok, captions[:2], 4, num_return_sequences=3, **sampled)
    # n takes of a prompt are that prompt n times, each row with its own unconditional twin
    assert three.shape[0] == 6 and torch.equal(three, repeated) and torch.equal(three_len, repeated_len)
    torch.manual_seed(0)
    sampled, lengths = text_to_tokens(model, tok, captions[:1], 5, guidance_scale=2.5, temperature=2.0,
                                      num_return_sequences=4, guidance_mode=mode)
    assert sampled.shape[0] == 4 and bool(((lengths >= 1) & (lengths <= 5)).all())


def test_beams_with_guidance_are_refused_clearly(setup, captions):
    model, tok, _ = setup
    with pytest.raises(ValueError, match=r"beam search \(num_beams=2\) cannot be combined with classifier-free"):
        text_to_tokens(model, tok, captions[:1], 3, guidance_scale=3.0, num_beams=2, num_return_sequences=2)


IDENTICAL_TAKES = [
    # (sampling arguments, words the message must hold)
    ({"do_sample": False}, ["num_return_sequences=2", "do_sample=False", "identical takes"]),
    ({"top_k": 1}, ["num_return_sequences=2", "top_k=1", "identical takes"]),
]


@pytest.mark.parametrize(("sampling", "words"), IDENTICAL_TAKES)
def test_takes_that_could_only_be_identical_are_refused_on_every_path(setup, captions, sampling, words):
    """Greedy decoding, or sampling the likeliest id only, with several takes per prompt: a ValueError
    naming both settings from every entry point, before the LM runs or anything is decoded."""
    model, tok, codec = setup
    clip = torch.zeros(1600)
    lay = tok.layout
    calls = {
        "generate_tokens": lambda: generate_tokens(model, lay, [[lay.audio_start_id]], 3, num_return_sequences=2,
                                                   **sampling),
        "text_to_tokens": lambda: text_to_tokens(model, tok, captions[:1], 3, num_return_sequences=2, **sampling),
        "continue_tokens": lambda: continue_tokens(model, tok, [torch.zeros(2, 2, dtype=torch.long)], 3,
                                                   num_return_sequences=2, **sampling),
        "generate_audio": lambda: generate_audio(model, tok, codec, captions[:1], seconds=0.1, num_return_sequences=2,
                                                 **sampling),
        "continue_audio": lambda: continue_audio(model, tok, codec, [clip], 0.1, 16000, num_return_sequences=2,
                                                 **sampling),
        "generate_audio_stream": lambda: generate_audio_stream(model, tok, codec, captions[:1], seconds=0.1,
                                                               num_return_sequences=2, **sampling),
        "continue_audio_stream": lambda: continue_audio_stream(model, tok, codec, [clip], 0.1, 16000,
                                                               num_return_sequences=2, **sampling),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as info:
            call()
        for word in words:
            assert word in str(info.value), (name, word, str(info.value))
    assert codec.decode_calls == 0 and codec.encode_calls == 0
    # one take, or distinct beams, stay allowed
    text_to_tokens(model, tok, captions[:1], 2, guidance_scale=1.0, num_return_sequences=1, **sampling)
    text_to_tokens(model, tok, captions[:1], 2, guidance_scale=1.0, num_beams=2, num_return_sequences=2, do_sample=False)
