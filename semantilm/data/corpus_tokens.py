"""Tokenise a whole corpus to a token data set on disk: what ``semantilm tokenize`` runs.

The corpus is checked (exists, not tokens already, has the named columns) before the codec is
loaded, tokenised in resumable shards kept under ``<out_dir>/.shards`` until the data set is
saved, and saved with a record of the codec that made it (``semantilm_token_dataset.json``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codec.config_file import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from codec.data.synthetic import SyntheticSoundConfig

__all__ = ["TokenisedCorpus", "tokenize_corpus", "SHARD_CACHE"]

SHARD_CACHE = ".shards"


@dataclass
class TokenisedCorpus:
    """What ``tokenize_corpus`` wrote: the token rows, their folder, total frames and the codec variant."""

    dataset: Dataset
    out_dir: Path
    num_frames: int
    codec_variant: str


def _load_checked(source: str, split: str, synthetic: SyntheticSoundConfig | None, max_examples: int | None,
                  audio_column: str, caption_column: str | None) -> Dataset:
    from codec.data.corpus import SYNTHETIC, load_corpus
    from semantilm.data.token_dataset import is_token_dataset

    if source != SYNTHETIC and source.startswith((".", "/", "~")) and not Path(source).expanduser().exists():
        raise FileNotFoundError(f"dataset {source!r} does not exist.")
    corpus = load_corpus(source, split=split, synthetic=synthetic, max_examples=max_examples)
    if is_token_dataset(corpus):
        raise ConfigError(f"dataset {source!r} already holds tokens; train on it directly.")
    for argument, column in (("audio_column", audio_column), ("caption_column", caption_column)):
        if column is not None and column not in corpus.column_names:
            raise ConfigError(f"{argument} {column!r} is not a column of {source!r}; it has {corpus.column_names}.")
    return corpus


def tokenize_corpus(
    source: str,
    codec: Any | Callable[[], Any],
    out_dir: str | os.PathLike,
    *,
    split: str = "train",
    audio_column: str = "audio",
    caption_column: str | None = None,
    max_examples: int | None = None,
    synthetic: SyntheticSoundConfig | None = None,
    batch_size: int = 16,
    shard_size: int = 1000,
    codec_source: dict[str, Any] | None = None,
) -> TokenisedCorpus:
    """Tokenise the corpus ``source`` (see ``codec.data.corpus.load_corpus``) into a token data set at ``out_dir``.

    codec: the codec, or a function that loads it (called after the corpus checks, so a typo fails
        before a download). codec_source: how to load that codec again, recorded with the data set.
    Rerunning after an interruption resumes at the first unfinished shard of ``shard_size`` rows.
    A missing local dataset is a ``FileNotFoundError``; a token data set or a missing column a ``ConfigError``.
    """
    from semantilm.codec_api import codec_description
    from semantilm.data.token_dataset import save_token_dataset
    from semantilm.data.tokenize import encode_audio_dataset

    corpus = _load_checked(source, split, synthetic, max_examples, audio_column, caption_column)
    model = codec() if callable(codec) and not hasattr(codec, "encode") else codec
    out = Path(out_dir)
    cache = out / SHARD_CACHE
    tokens = encode_audio_dataset(corpus, model, audio_column=audio_column, caption_column=caption_column,
                                  batch_size=batch_size, cache_dir=cache, shard_size=shard_size)
    info = codec_description(model)
    if codec_source is not None:
        info["source"] = dict(codec_source)
    save_token_dataset(tokens, out, info)
    shutil.rmtree(cache, ignore_errors=True)
    return TokenisedCorpus(tokens, out, int(sum(tokens["num_frames"])), str(model.variant))
