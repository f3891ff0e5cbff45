"""Token folders written by earlier versions, read as they are (nothing writes them any more).

* ``semantilm_token_dataset.json``: a ``save_to_disk`` data set of token rows;
* ``semantilm_token_cache.json``: the ``cache_dir`` of the former ``encode_audio_dataset``: shards
  ``shard-00000/``, ... (each a ``save_to_disk`` data set) of ``shard_size`` rows, in input order.

Both are read by :func:`semantilm.data.token_dataset.load_token_dataset`; ``tokenize_corpus`` refuses to
write into them (it makes a token folder, ``semantilm_tokens.json``, in a new folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["OLDER_RECORDS", "SAVED_TOKENS", "OLD_CACHE", "read_older_token_folder"]

SAVED_TOKENS = "semantilm_token_dataset.json"
OLD_CACHE = "semantilm_token_cache.json"
OLDER_RECORDS = (SAVED_TOKENS, OLD_CACHE)


def _cache_rows(directory: Path, record: dict) -> tuple[Dataset | None, str | None]:
    """The rows of a former ``encode_audio_dataset`` cache, or what is wrong with it (a shard missing,
    another row count than recorded)."""
    from datasets import concatenate_datasets, load_from_disk

    rows, size = int(record.get("num_rows", 0)), int(record.get("shard_size", 0) or 1)
    shards = [directory / f"shard-{k:05d}" for k in range(max(1, -(-rows // size)))]
    missing = [p.name for p in shards if not p.is_dir()]
    parts = [] if missing else [load_from_disk(str(p)) for p in shards]
    if missing or sum(len(p) for p in parts) != rows:
        what = f"its shards {missing} are missing" if missing else f"its shards hold {sum(len(p) for p in parts)} rows"
        return None, (f"{str(directory)!r} is an unfinished token cache of the former encode_audio_dataset "
                      f"({OLD_CACHE} records {rows} rows; {what}); tokenise the data set again with "
                      "semantilm.tokenize_corpus into a new folder.")
    return concatenate_datasets(parts), None


def read_older_token_folder(directory: Path, record_file: str) -> tuple[Dataset | None, str | None]:
    """(rows, None) of an older folder whose record is ``record_file`` (one of ``OLDER_RECORDS``), or
    (None, what is wrong with it)."""
    from codec.data import load_corpus
    from plumbing.io import read_json_object

    if record_file == OLD_CACHE:
        return _cache_rows(directory, read_json_object(directory / OLD_CACHE, "token cache record",
                                                       "tokenise the data set again"))
    return load_corpus(str(directory)), None
