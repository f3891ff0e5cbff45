"""Tokenising: an audio column (+ optional caption column) -> rows of codec tokens.

* ``encode_audio_dataset``: a batched ``datasets.map`` through the codec. With ``cache_dir``
  the dataset is processed in contiguous shards, each saved when complete, so a run that is
  interrupted resumes at the first missing shard without losing or duplicating rows.
* ``encode_audio_stream``: the same on an ``IterableDataset`` (streaming corpora that do not
  fit on disk); tokens are computed lazily while iterating.

Both read ``datasets.Audio`` columns as ``Audio(decode=False)`` cells decoded with soundfile, as
``semantilm tokenize`` does (``datasets`` >= 4 would decode them with torchcodec, which needs FFmpeg),
and warn about samples beyond [-1, 1] naming the data set row.

Token rows have the columns ``semantic_ids`` (list[int], T), ``acoustic_ids`` (list[int], T),
``num_frames`` (int) and, when a caption column is given, ``caption`` (str);
:mod:`semantilm.data.collator` turns them into LM batches.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from codec.data.corpus import audio_cell_to_waveform, check_columns, undecoded_audio
from codec.progress import progress_bar
from semantilm.codec_api import check_codec, codec_description
from semantilm.data.input_warnings import codec_warnings_silenced, input_notes, warn_about_input

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset, IterableDataset

    from semantilm.codec_api import AudioCodec

__all__ = ["encode_audio_dataset", "encode_audio_stream", "TOKEN_COLUMNS"]

logger = logging.getLogger(__name__)
TOKEN_COLUMNS = ("semantic_ids", "acoustic_ids", "num_frames")
MANIFEST = "semantilm_token_cache.json"  # not the token folder manifest of semantilm tokenize


def _row_wave(value: object, sample_rate: int | None, column: str, row: int) -> tuple[object, int]:
    """One audio cell as (waveform, rate); a ``ValueError`` / ``TypeError`` naming the data set row."""
    from codec.audio import check_waveform

    name = f"dataset row {row} (column {column!r})"
    try:
        wave, sr = audio_cell_to_waveform(value, sample_rate, column)
        check_waveform(wave, name)
    except (ValueError, TypeError) as err:
        message = str(err) if str(err).startswith(name) else f"{name}: {err}"
        raise (TypeError if isinstance(err, TypeError) else ValueError)(message) from err
    warn_about_input(input_notes(wave, name))
    return wave, sr


def _encode_rows(codec: AudioCodec, waves: list, sr: int, rows: list[int], column: str):
    """``codec.encode`` of clips at one rate; when it fails, the first clip that fails alone is named by its row."""
    try:
        with codec_warnings_silenced():  # the rows were checked (and warned about by row) when read
            return codec.encode(waves, sr)
    except (ValueError, TypeError) as err:
        for wave, row in zip(waves, rows, strict=True):
            try:
                with codec_warnings_silenced():
                    codec.encode([wave], sr)
            except (ValueError, TypeError) as alone:
                kind = TypeError if isinstance(alone, TypeError) else ValueError
                raise kind(f"dataset row {row} (column {column!r}) cannot be encoded: {alone}") from alone
        raise err


def _encode_fn(codec: AudioCodec, audio_column: str, caption_column: str | None, sample_rate: int | None,
               offset: int = 0):
    """The ``datasets.map`` function (with indices; ``offset``: row number of the mapped part's first row)."""

    def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        rows = [offset + i for i in indices]
        waves = [_row_wave(v, sample_rate, audio_column, r) for v, r in zip(batch[audio_column], rows, strict=True)]
        semantic: list[list[int] | None] = [None] * len(waves)
        acoustic: list[list[int] | None] = [None] * len(waves)
        for sr in sorted({sr for _, sr in waves}):  # one codec call per sample rate in the batch
            index = [i for i, (_, s) in enumerate(waves) if s == sr]
            out = _encode_rows(codec, [waves[i][0] for i in index], sr, [rows[i] for i in index], audio_column)
            for i, tokens in zip(index, out.unbatch(), strict=True):
                semantic[i] = tokens[:, 0].tolist()
                acoustic[i] = tokens[:, 1].tolist()
        result: dict[str, list] = {
            "semantic_ids": semantic,
            "acoustic_ids": acoustic,
            "num_frames": [len(s) for s in semantic],
        }
        if caption_column is not None:
            result["caption"] = [c if isinstance(c, str) else "" for c in batch[caption_column]]
        return result

    return encode


def encode_audio_dataset(
    dataset: Dataset,
    codec: AudioCodec,
    audio_column: str = "audio",
    caption_column: str | None = None,
    sample_rate: int | None = None,
    batch_size: int = 16,
    cache_dir: str | os.PathLike | None = None,
    shard_size: int = 1000,
) -> Dataset:
    """Tokenise ``dataset[audio_column]`` with ``codec`` (batched ``datasets.map``).

    sample_rate: rate of raw-array cells (``datasets.Audio`` cells carry their own).
    cache_dir:   where finished shards of ``shard_size`` rows are kept; rerunning after an
                 interruption skips them. The cache records the codec variant and the source
                 dataset's fingerprint and refuses to mix tokens of another one.
    returns:     a ``Dataset`` with the token columns (+ ``caption``), rows in input order.
    """
    from datasets import concatenate_datasets, load_from_disk

    check_codec(codec, methods=("encode",))
    check_columns(dataset.column_names, audio_column, caption_column)
    if batch_size <= 0 or shard_size <= 0:
        raise ValueError(f"batch_size and shard_size must be positive, got {batch_size} and {shard_size}.")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty (no rows): there is nothing to tokenise.")
    fingerprint, dataset = getattr(dataset, "_fingerprint", None), undecoded_audio(dataset)  # the print as given
    fn = _encode_fn(codec, audio_column, caption_column, sample_rate)
    remove = list(dataset.column_names)
    if cache_dir is None:
        return dataset.map(fn, batched=True, batch_size=batch_size, remove_columns=remove, desc="encode audio",
                           with_indices=True)

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    info = codec_description(codec)
    info.pop("config", None)
    manifest = {
        "codec": info,
        "dataset_fingerprint": fingerprint,
        "num_rows": len(dataset),
        "shard_size": shard_size,
        "audio_column": audio_column,
        "caption_column": caption_column,
    }
    path = cache_dir / MANIFEST
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != manifest:
            diff = sorted(k for k in manifest if stored.get(k) != manifest[k])
            raise ValueError(
                f"cache_dir={str(cache_dir)!r} holds tokens made with different {diff}; "
                "use another cache_dir (or delete this one) to tokenise this dataset."
            )
    else:
        from codec.io import write_json

        write_json(path, manifest)

    parts = []
    n_shards = max(1, -(-len(dataset) // shard_size))
    for k in progress_bar(range(n_shards), desc="encode audio shards", unit="shard", progress=None if n_shards > 1 else False):
        shard_dir = cache_dir / f"shard-{k:05d}"
        if shard_dir.is_dir():
            parts.append(load_from_disk(str(shard_dir)))
            continue
        rows = range(k * shard_size, min((k + 1) * shard_size, len(dataset)))
        part = dataset.select(rows).map(
            _encode_fn(codec, audio_column, caption_column, sample_rate, offset=k * shard_size), batched=True,
            batch_size=batch_size, remove_columns=remove, load_from_cache_file=False, keep_in_memory=True,
            desc=f"shard {k + 1}/{n_shards}", with_indices=True,
        )
        tmp = cache_dir / f".shard-{k:05d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        part.save_to_disk(str(tmp))
        os.replace(tmp, shard_dir)  # a shard exists only once complete
        logger.info("encoded shard %d/%d (%d rows)", k + 1, n_shards, len(rows))
        parts.append(load_from_disk(str(shard_dir)))
    return concatenate_datasets(parts)


def encode_audio_stream(
    dataset: IterableDataset,
    codec: AudioCodec,
    audio_column: str = "audio",
    caption_column: str | None = None,
    sample_rate: int | None = None,
    batch_size: int = 16,
) -> IterableDataset:
    """Lazily tokenise a streaming ``IterableDataset`` (nothing is written to disk).

    Resuming a stream is ``IterableDataset.state_dict()`` / ``load_state_dict()`` of datasets.
    """
    check_codec(codec, methods=("encode",))
    check_columns(dataset.column_names, audio_column, caption_column)
    dataset = undecoded_audio(dataset)
    fn = _encode_fn(codec, audio_column, caption_column, sample_rate)
    remove = list(dataset.column_names) if dataset.column_names is not None else [audio_column]
    return dataset.map(fn, batched=True, batch_size=batch_size, remove_columns=remove, with_indices=True)
