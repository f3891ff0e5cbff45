"""What ``semantilm tokenize`` reads: an input split into numbered shards of items.

Inputs (``open_source``):

* a folder tree of audio files, in the ``audiofolder`` convention: ``metadata.csv`` / ``metadata.jsonl``
  files anywhere in the tree with a ``file_name`` column relative to their folder (their other columns
  are carried); a ``.txt`` file beside an audio file is its ``caption``. Item id: the relative path.
* a ``datasets`` dataset: ``"synthetic"``, a ``save_to_disk`` folder, Parquet / Arrow files, a hub name,
  a ``Dataset`` or a streaming ``IterableDataset``. Item id: the row index.
* WebDataset-style ``.tar`` shards (a file, a folder of them or a glob): members grouped by key (the path
  up to the first dot of the file name); one audio member, ``.json`` fields carried, ``.txt`` the caption.
  Item id: the key. One tar is one shard.

A shard is a list of items ``{"id", "audio", "meta"}`` whose ``audio`` is a path, encoded bytes or a
``datasets`` audio cell; shard ``k`` holds the same items whatever process reads it.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codec.config_file import ConfigError
from codec.data.corpus import AUDIO_SUFFIXES, SYNTHETIC, audio_files, undecoded_audio

__all__ = ["Source", "open_source", "probe_seconds", "RESERVED_COLUMNS"]

RESERVED_COLUMNS = ("id", "semantic_ids", "acoustic_ids", "num_frames", "duration")
METADATA_FILES = ("metadata.csv", "metadata.jsonl")


def _shard_count(rows: int, shard_size: int) -> int:
    return max(1, -(-rows // shard_size))


class Source:
    """An input split into shards. ``num_shards`` is None for a stream (known once it is read)."""

    kind = "source"
    num_shards: int | None = None

    def __init__(self, description: dict[str, Any], columns: list[str] | None, types: dict[str, Any] | None = None):
        self.description = description
        self.columns = columns  # carried metadata columns (None: not known before reading)
        self.types = types or {}  # Arrow types of carried columns, where the input says them

    def shard(self, k: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def iter_shards(self, wanted: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(k, items) for every shard k with ``wanted(k)``, then sets ``num_shards``."""
        for k in range(self.num_shards or 0):
            if wanted(k):
                yield k, self.shard(k)


class FolderSource(Source):
    kind = "folder"

    def __init__(self, folder: Path, shard_size: int, max_examples: int | None):
        self.root = folder
        self.files = audio_files(folder)[:max_examples]
        if not self.files:
            raise ValueError(f"folder {str(folder)!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
        self.meta, columns, self.csv_columns = _folder_metadata(folder)
        self.captions = "caption" not in columns and any(f.with_suffix(".txt").is_file() for f in self.files)
        if self.captions:
            columns.append("caption")
        self.shard_size = shard_size
        self.num_shards = _shard_count(len(self.files), shard_size)
        import pyarrow as pa

        types = {c: pa.string() for c in self.csv_columns + (["caption"] if self.captions else [])}
        super().__init__({"kind": self.kind, "path": str(folder.resolve()), "rows": len(self.files)}, columns, types)

    def shard(self, k: int) -> list[dict[str, Any]]:
        items = []
        for path in self.files[k * self.shard_size : (k + 1) * self.shard_size]:
            meta = {c: None for c in self.columns or []}
            meta.update(self.meta.get(path.resolve(), {}))
            if self.captions:
                text = path.with_suffix(".txt")
                meta["caption"] = text.read_text().strip() if text.is_file() else ""
            items.append({"id": path.relative_to(self.root).as_posix(), "audio": str(path), "meta": meta})
        return items


def _folder_metadata(folder: Path) -> tuple[dict[Path, dict[str, Any]], list[str], list[str]]:
    """audiofolder metadata: absolute audio path -> its row (without file_name); the columns in order;
    the columns of CSV files (text)."""
    rows: dict[Path, dict[str, Any]] = {}
    columns: list[str] = []
    csv_columns: list[str] = []
    for name in METADATA_FILES:
        for meta_path in sorted(folder.rglob(name)):
            if meta_path.suffix == ".csv":
                with meta_path.open(newline="") as f:
                    records = list(csv.DictReader(f))
            else:
                records = [json.loads(line) for line in meta_path.read_text().splitlines() if line.strip()]
            for record in records:
                if "file_name" not in record:
                    raise ConfigError(f"{str(meta_path)!r} has no file_name column (audiofolder convention).")
                target = (meta_path.parent / str(record.pop("file_name"))).resolve()
                rows[target] = record
                columns.extend(c for c in record if c not in columns)
                if meta_path.suffix == ".csv":
                    csv_columns.extend(c for c in record if c not in csv_columns)
    return rows, columns, csv_columns


class DatasetSource(Source):
    """A ``datasets.Dataset`` (contiguous row ranges) or ``IterableDataset`` (rows as they stream)."""

    kind = "dataset"

    def __init__(self, dataset: Any, description: dict[str, Any], audio_column: str, shard_size: int,
                 max_examples: int | None):
        from datasets import Audio, IterableDataset

        self.stream = isinstance(dataset, IterableDataset)
        dataset = undecoded_audio(dataset)
        names = list(dataset.column_names) if dataset.column_names is not None else None
        if names is not None and audio_column not in names:
            raise ConfigError(f"audio_column {audio_column!r} is not a column of {description.get('name')!r}; "
                              f"it has {names}.")
        features = getattr(dataset, "features", None) or {}
        skip = {audio_column} | {n for n, f in features.items() if isinstance(f, Audio)}
        columns = None if names is None else [n for n in names if n not in skip]
        types = {}
        if features:
            schema = features.arrow_schema
            types = {n: schema.field(n).type for n in features if n not in skip}
        if max_examples is not None:
            dataset = dataset.take(max_examples) if self.stream else dataset.select(range(min(max_examples, len(dataset))))
        self.dataset, self.audio_column, self.shard_size, self.skip = dataset, audio_column, shard_size, skip
        if not self.stream:
            if len(dataset) == 0:
                raise ValueError(f"dataset {description.get('name')!r} has no rows.")
            self.num_shards = _shard_count(len(dataset), shard_size)
            description = {**description, "rows": len(dataset)}
        super().__init__({**description, "kind": self.kind, "streaming": self.stream}, columns, types)

    def _item(self, index: int, row: dict[str, Any]) -> dict[str, Any]:
        meta = {c: v for c, v in row.items() if c not in self.skip}
        return {"id": str(index), "audio": row[self.audio_column], "meta": meta}

    def shard(self, k: int) -> list[dict[str, Any]]:
        start = k * self.shard_size
        block = self.dataset[start : start + self.shard_size]
        names = list(block)
        return [self._item(start + i, {n: block[n][i] for n in names}) for i in range(len(block[names[0]]))]

    def iter_shards(self, wanted: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        if not self.stream:
            yield from super().iter_shards(wanted)
            return
        items: list[dict[str, Any]] = []
        k, rows = 0, 0
        for index, row in enumerate(self.dataset):
            rows = index + 1
            k = index // self.shard_size
            if wanted(k):
                items.append(self._item(index, row))
            if rows % self.shard_size == 0 and items:
                yield k, items
                items = []
        if items:
            yield k, items
        self.num_shards = _shard_count(rows, self.shard_size)


class TarSource(Source):
    kind = "tar"

    def __init__(self, files: list[Path], description: str):
        self.files = files
        self.num_shards = len(files)
        super().__init__({"kind": self.kind, "path": description, "shards": [f.name for f in files]}, None)

    def shard(self, k: int) -> list[dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {}
        with tarfile.open(self.files[k]) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, _, name = member.name.rpartition("/")
                stem, _, ext = name.partition(".")
                key = f"{folder}/{stem}" if folder else stem
                group = groups.setdefault(key, {"id": key, "audio": None, "meta": {}})
                data = tar.extractfile(member).read()
                last = ext.lower().rpartition(".")[2]
                if f".{last}" in AUDIO_SUFFIXES:
                    group["audio"] = data
                elif last == "json":
                    group["meta"].update(json.loads(data))
                elif last == "txt":
                    group["meta"]["caption"] = data.decode("utf-8").strip()
        return list(groups.values())


def _tar_files(path: str) -> list[Path] | None:
    if any(ch in path for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(path, recursive=True))
        return [f for f in files if f.suffix == ".tar"] or None
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".tar":
        return [p]
    if p.is_dir() and not audio_files(p):
        return sorted(f for f in p.rglob("*.tar") if f.is_file()) or None
    return None


def open_source(source: Any, *, split: str = "train", audio_column: str = "audio", shard_size: int = 512,
                max_examples: int | None = None, synthetic: Any = None, streaming: bool = False) -> Source:
    """The input ``source`` (see the module docstring) as a ``Source`` of shards of ``shard_size`` items."""
    from codec.data.corpus import load_corpus

    if shard_size <= 0:
        raise ConfigError(f"shard_size must be positive, got {shard_size}.")
    if not isinstance(source, str):  # a Dataset / IterableDataset object
        description = {"name": f"<{type(source).__name__} {getattr(source, '_fingerprint', '')}>"}
        return DatasetSource(source, description, audio_column, shard_size, max_examples)
    path = Path(source).expanduser()
    if source != SYNTHETIC and source.startswith((".", "/", "~")) and not path.exists() and not _tar_files(source):
        raise FileNotFoundError(f"dataset {source!r} does not exist.")
    if (path / "semantilm_tokens.json").is_file():
        raise ConfigError(f"dataset {source!r} already holds tokens; train on it directly.")
    tars = _tar_files(source) if source != SYNTHETIC else None
    if tars:
        if max_examples is not None:
            raise ConfigError("--max-examples is not supported with .tar shards (one tar is one shard).")
        return TarSource(tars, source)
    if path.is_dir() and audio_files(path):
        return FolderSource(path, shard_size, max_examples)
    description = {"name": source if source == SYNTHETIC or not path.exists() else str(path.resolve()), "split": split}
    if streaming and source != SYNTHETIC and not path.exists():
        from datasets import load_dataset

        dataset = load_dataset(source, split=split, streaming=True)
    else:
        dataset = load_corpus(source, split=split, synthetic=synthetic, max_examples=max_examples)
    return DatasetSource(dataset, description, audio_column, shard_size, max_examples)


def probe_seconds(audio: Any) -> float:
    """Duration of an item's audio from its header (0 when it cannot be read): the sort key of batches."""
    import soundfile as sf

    try:
        if isinstance(audio, dict) and audio.get("array") is not None:
            return len(audio["array"]) / float(audio.get("sampling_rate") or 1)
        if isinstance(audio, dict):
            audio = audio.get("bytes") or audio.get("path")
        if isinstance(audio, (bytes, bytearray)):
            return float(sf.info(io.BytesIO(audio)).duration)
        return float(sf.info(str(audio)).duration)
    except Exception:  # noqa: BLE001 - the loader reports unreadable audio properly
        return 0.0
