"""Fixtures of the LM training tests: a sentencepiece tokenizer over the stand-in codec, token rows."""

from __future__ import annotations

import pytest

from semantilm.data.tokenize import encode_audio_dataset
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer
from tests.fake_codec import make_clip


def token_dataset(codec, captions, n, seconds=0.08):
    from datasets import Dataset

    ds = Dataset.from_dict(
        {
            "audio": [{"array": make_clip(10 + i, seconds).tolist(), "sampling_rate": 16000} for i in range(n)],
            "caption": [captions[i % len(captions)] for i in range(n)],
        }
    )
    return encode_audio_dataset(ds, codec, caption_column="caption")


@pytest.fixture
def sp_tok(sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    return AudioTextTokenizer(sp, AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size()))
