"""Fixtures of the LM training tests: a sentencepiece tokenizer over the stand-in codec, token rows."""

from __future__ import annotations

import pytest

from semantilm.data.corpus_tokens import tokenize_corpus
from semantilm.data.tokenize_settings import TokenizeSettings
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer
from tests.fake_codec import make_clip


def token_dataset(codec, captions, n, folder, seconds=0.08):
    """Token rows of ``n`` captioned clips, tokenised into ``folder``."""
    from datasets import Dataset

    ds = Dataset.from_dict(
        {
            "audio": [{"array": make_clip(10 + i, seconds).tolist(), "sampling_rate": 16000} for i in range(n)],
            "caption": [captions[i % len(captions)] for i in range(n)],
        }
    )
    settings = TokenizeSettings(caption_column="caption", num_workers=0)
    return tokenize_corpus(ds, codec, folder, settings=settings, progress=False).dataset


@pytest.fixture
def sp_tok(sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    return AudioTextTokenizer(sp, AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size()))
