"""What ``semantilm tokenize`` reads: an input split into numbered shards of items.

Inputs (``open_source``):

* a folder tree of audio files, in the ``audiofolder`` convention: ``metadata.csv`` / ``metadata.jsonl``
  files anywhere in the tree (one per folder) with a ``file_name`` column relative to their folder (their
  other columns are carried); a ``.txt`` file beside an audio file is its ``caption``. Every file that
  looks like audio and every file a metadata file lists is an input. Item id: the relative path.
* a ``datasets`` dataset: ``"synthetic"``, a ``save_to_disk`` folder, Parquet / Arrow files, a hub name,
  a ``Dataset`` or a streaming ``IterableDataset``. Item id: the row index.
* WebDataset-style ``.tar`` shards (a file, a folder of them or a glob): members grouped by key (the path
  up to the first dot of the file name); each audio member is an input, ``.json`` fields carried, ``.txt``
  the caption. Item id: the key (the member's name when a key has several audio members). One tar is one
  shard.

A shard is a list of items ``{"id", "audio", "meta", "name"}`` whose ``audio`` is a path, encoded bytes or a
``datasets`` audio cell and ``name`` says where the input is in messages; an item that cannot be read
also has an ``error`` (the failure reason) and may have an ``origin`` (fields for its failure record).
Shard ``k`` holds the same items whatever process reads it.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tarfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codec.audio import AudioWarning
from codec.data import AUDIO_LIKE_SUFFIXES, SYNTHETIC, audio_like_files, undecoded_audio
from plumbing.config_file import ConfigError
from semantilm.data.folder_metadata import METADATA_FILES, folder_metadata

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.data.tokenize_settings import TokenizeSettings

__all__ = ["Source", "open_source", "probe_seconds", "RESERVED_COLUMNS"]

RESERVED_COLUMNS = ("id", "semantic_ids", "acoustic_ids", "num_frames", "duration")


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
    """A folder tree of audio files (every file that looks like audio, and every file a metadata file lists)."""

    kind = "folder"

    def __init__(self, folder: Path, shard_size: int, max_examples: int | None):
        import pyarrow as pa

        self.root = folder
        self.meta, columns, self.csv_columns = folder_metadata(folder)
        paths = {p.resolve(): p for p in audio_like_files(folder)}
        for target, (_, _, listed) in self.meta.items():
            paths.setdefault(target, listed)
        self.files = sorted(paths.items(), key=lambda kv: Path(os.path.relpath(kv[1], folder)))[:max_examples]
        if not self.files:
            raise ValueError(f"folder {str(folder)!r} holds no audio files ({', '.join(AUDIO_LIKE_SUFFIXES)}).")
        self.not_in_metadata = [self._id(path) for target, path in self.files if self.meta and target not in self.meta]
        if self.not_in_metadata:
            examples = ", ".join(repr(i) for i in self.not_in_metadata[:3])
            warnings.warn(
                f"{len(self.not_in_metadata)} of the {len(self.files)} audio files of {str(folder)!r} are in no "
                f"metadata file (e.g. {examples}): they are tokenised with empty metadata columns; list them in "
                "a metadata file if they should have some.", AudioWarning, stacklevel=3)
        self.captions = "caption" not in columns and any(path.with_suffix(".txt").is_file() for _, path in self.files)
        if self.captions:
            columns.append("caption")
        self.shard_size = shard_size
        self.num_shards = _shard_count(len(self.files), shard_size)
        types = {c: pa.string() for c in self.csv_columns + (["caption"] if self.captions else [])}
        super().__init__({"kind": self.kind, "path": str(folder.resolve()), "rows": len(self.files)}, columns, types)

    def _id(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def shard(self, k: int) -> list[dict[str, Any]]:
        items = []
        for target, path in self.files[k * self.shard_size : (k + 1) * self.shard_size]:
            item_id = self._id(path)
            meta = {c: None for c in self.columns or []}
            record, where, _ = self.meta.get(target, ({}, None, None))
            meta.update(record)
            item = {"id": item_id, "audio": str(path), "meta": meta, "name": repr(item_id)}
            if where is not None and not target.is_file():
                item["error"] = f"missing: {where} lists {item_id!r}, but there is no such file"
            elif self.captions:
                text = path.with_suffix(".txt")
                try:
                    meta["caption"] = text.read_text(encoding="utf-8-sig").strip() if text.is_file() else ""
                except (OSError, UnicodeDecodeError) as err:
                    item["error"] = f"caption: {str(text)!r} cannot be read as UTF-8 text ({err})"
            items.append(item)
        return items


class DatasetSource(Source):
    """A ``datasets.Dataset`` (contiguous row ranges) or ``IterableDataset`` (rows as they stream)."""

    kind = "dataset"

    def __init__(self, dataset: Any, description: dict[str, Any], settings: TokenizeSettings):
        from datasets import Audio, IterableDataset

        self.stream = isinstance(dataset, IterableDataset)
        dataset = undecoded_audio(dataset)
        audio_column, max_examples = settings.audio_column, settings.max_examples
        names = list(dataset.column_names) if dataset.column_names is not None else None
        if names is not None and audio_column not in names:
            raise ConfigError(f"audio_column {audio_column!r} is not a column of {description.get('name')!r}; "
                              f"it has {names}.")
        features = getattr(dataset, "features", None) or {}
        _check_bare_arrays(features.get(audio_column), audio_column, settings.sample_rate, description)
        skip = {audio_column} | {n for n, f in features.items() if isinstance(f, Audio)}
        columns = None if names is None else [n for n in names if n not in skip]
        types = {}
        if features:
            schema = features.arrow_schema
            types = {n: schema.field(n).type for n in features if n not in skip}
        if max_examples is not None:
            dataset = dataset.take(max_examples) if self.stream else dataset.select(range(min(max_examples, len(dataset))))
        self.dataset, self.audio_column, self.shard_size, self.skip = dataset, audio_column, settings.shard_size, skip
        self.sample_rate = settings.sample_rate
        if not self.stream:
            if len(dataset) == 0:
                raise ValueError(f"dataset {description.get('name')!r} is empty (no rows): there is nothing to tokenise.")
            self.num_shards = _shard_count(len(dataset), self.shard_size)
            description = {**description, "rows": len(dataset)}
        if self.sample_rate is not None:
            description = {**description, "sample_rate": self.sample_rate}
        super().__init__({**description, "kind": self.kind, "streaming": self.stream}, columns, types)

    def _item(self, index: int, row: dict[str, Any]) -> dict[str, Any]:
        meta = {c: v for c, v in row.items() if c not in self.skip}
        audio = row[self.audio_column]
        if self.sample_rate is not None and not isinstance(audio, (dict, str, bytes, bytearray)) and audio is not None:
            audio = {"array": audio, "sampling_rate": self.sample_rate}  # a bare array of samples
        return {"id": str(index), "audio": audio, "meta": meta,
                "name": f"dataset row {index} (column {self.audio_column!r})"}

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
        if rows == 0:
            raise ValueError(f"dataset {self.description.get('name')!r} is empty (the stream has no rows): "
                             "there is nothing to tokenise.")
        self.num_shards = _shard_count(rows, self.shard_size)


def _check_bare_arrays(feature: Any, column: str, sample_rate: int | None, description: dict[str, Any]) -> None:
    """A ``ConfigError`` before any work when the audio column holds bare arrays of samples (no rate in
    the cells) and ``sample_rate`` does not give their rate."""
    bare = type(feature).__name__ in ("Sequence", "List", "LargeList", "Array2D")  # one name per datasets version
    if bare and sample_rate is None:
        raise ConfigError(f"column {column!r} of {description.get('name')!r} holds bare arrays of samples, "
                          "without their sampling rate: give it with TokenizeSettings(sample_rate=...) "
                          "(--sample-rate), or store datasets.Audio cells ({'array', 'sampling_rate'}).")


class TarSource(Source):
    """WebDataset-style ``.tar`` shards: one shard per tar, one input per audio member."""

    kind = "tar"

    def __init__(self, files: list[Path], description: str):
        self.files = files
        self.num_shards = len(files)
        super().__init__({"kind": self.kind, "path": description, "shards": [f.name for f in files]}, None)

    def shard(self, k: int) -> list[dict[str, Any]]:
        """The inputs of tar ``k``; what cannot be read (the tar, a member, a key's metadata) is an item
        with an ``error`` naming the tar and the member."""
        path = self.files[k]
        groups: dict[str, dict[str, Any]] = {}
        try:
            with tarfile.open(path) as tar:
                for member in tar:
                    _add_member(groups, tar, member, path)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            what = "is not a tar archive" if not groups else f"is cut off or damaged after {len(groups)} keys"
            items = _tar_items(groups, path)
            items.append({"id": path.name, "audio": None, "meta": {}, "name": repr(str(path)),
                          "origin": {"tar": str(path)},
                          "error": f"unreadable tar: {str(path)!r} {what} ({type(err).__name__}: {err}); "
                                   "check the file (e.g. tar -tf) or download it again"})
            return items
        return _tar_items(groups, path)


def _add_member(groups: dict[str, dict[str, Any]], tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    """File ``member`` under its key: audio (several per key are several inputs), ``.json`` fields,
    ``.txt`` caption (``KEY.other.txt``: a column ``other.txt``); other members are not read."""
    folder, _, name = member.name.rpartition("/")
    stem, _, ext = name.partition(".")
    key = f"{folder}/{stem}" if folder else stem
    last = "." + ext.lower().rpartition(".")[2]
    where = f"member {member.name!r} of {str(path)!r}"
    if member.isdir():
        return
    group = groups.setdefault(key, {"audio": [], "meta": {}, "errors": [], "members": []})
    group["members"].append(member.name)
    is_audio = last in AUDIO_LIKE_SUFFIXES
    if not is_audio and last not in (".json", ".txt"):
        return
    data, error = None, None
    if not member.isfile():
        error = f"unreadable: {where} is a link or special file, not audio data"
    else:
        try:
            data = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as err:
            error = f"unreadable: {where} cannot be read ({type(err).__name__}: {err})"
    if is_audio:
        copy = 1 + sum(1 for entry in group["audio"] if entry[0] == member.name)
        if copy > 1:
            error = f"duplicate: {where} is in the tar {copy} times; the first copy is tokenised"
        group["audio"].append((member.name, data, error, copy))
        return
    if error is not None:
        group["errors"].append(error)
        return
    try:
        if last == ".json":
            fields = json.loads(data)
            if not isinstance(fields, dict):
                raise ValueError(f"it holds a {type(fields).__name__}, not a JSON object")
            group["meta"].update(fields)
        else:
            group["meta"]["caption" if ext.lower() == "txt" else ext] = data.decode("utf-8-sig").strip()
    except (ValueError, UnicodeDecodeError) as err:
        kind = "JSON object" if last == ".json" else "UTF-8 text"
        group["errors"].append(f"metadata: {where} is not a valid {kind} ({err})")


def _tar_items(groups: dict[str, dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """One item per audio member (id: the key, or the member's name when its key has several), and one
    failed item per key without audio."""
    items = []
    for key, group in groups.items():
        problems = "; ".join(group["errors"]) or None
        if not group["audio"]:
            items.append({"id": key, "audio": None, "meta": {}, "name": f"key {key!r} of {str(path)!r}",
                          "origin": {"tar": str(path)},
                          "error": problems or (f"no audio: key {key!r} of {str(path)!r} has no audio member "
                                                f"(members {group['members']}); audio members end in "
                                                f"{', '.join(AUDIO_LIKE_SUFFIXES[:6])}, ...")})
            continue
        several = len(group["audio"]) > 1
        for member, data, error, copy in group["audio"]:
            item_id = (member if several else key) if copy == 1 else f"{member} (copy {copy})"
            items.append({"id": item_id, "audio": data, "meta": dict(group["meta"]),
                          "name": f"{member!r} of {str(path)!r}", "origin": {"tar": str(path), "member": member},
                          "error": error or problems})
    return items


def _tar_files(path: str) -> list[Path] | None:
    if any(ch in path for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(path, recursive=True))
        return [f for f in files if f.suffix == ".tar"] or None
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".tar":
        return [p]
    if p.is_dir() and not _is_audio_folder(p):
        return sorted(f for f in p.rglob("*.tar") if f.is_file()) or None
    return None


def _is_audio_folder(path: Path) -> bool:
    """A folder of audio files: something in it looks like audio, or a metadata file lists files."""
    return path.is_dir() and bool(audio_like_files(path) or any(next(path.rglob(n), None) for n in METADATA_FILES))


def open_source(source: Any, settings: TokenizeSettings) -> Source:
    """The input ``source`` (see the module docstring) as a ``Source`` of shards of ``settings.shard_size`` items."""
    from codec.data import load_corpus
    from semantilm.data.token_dataset import token_record_file

    if not isinstance(source, str):  # a Dataset / IterableDataset object
        description = {"name": f"<{type(source).__name__} {getattr(source, '_fingerprint', '')}>"}
        return DatasetSource(source, description, settings)
    path = Path(source).expanduser()
    if source != SYNTHETIC and source.startswith((".", "/", "~")) and not path.exists() and not _tar_files(source):
        raise FileNotFoundError(f"dataset {source!r} does not exist.")
    if path.is_dir() and token_record_file(path) is not None:
        raise ConfigError(f"dataset {source!r} already holds tokens ({token_record_file(path).name}); train on it "
                          "directly, or read it with semantilm.load_token_dataset.")
    shard_size, max_examples, split = settings.shard_size, settings.max_examples, settings.split
    tars = _tar_files(source) if source != SYNTHETIC else None
    if tars:
        if max_examples is not None:
            raise ConfigError("max_examples (--max-examples) is not supported with .tar shards (one tar is one shard).")
        return TarSource(tars, source)
    if _is_audio_folder(path):
        tars = sorted(str(f.relative_to(path)) for f in path.rglob("*.tar") if f.is_file())
        if tars:
            raise ConfigError(f"folder {source!r} holds audio files and .tar shards ({', '.join(tars[:3])}); "
                              "tokenise one kind at a time: move the .tar files to their own folder.")
        return FolderSource(path, shard_size, max_examples)
    description = {"name": source if source == SYNTHETIC or not path.exists() else str(path.resolve()), "split": split}
    if settings.streaming and source != SYNTHETIC and not path.exists():
        from datasets import load_dataset

        dataset = load_dataset(source, split=split, streaming=True)
    else:
        dataset = load_corpus(source, split=split, synthetic=settings.synthetic, max_examples=max_examples)
    return DatasetSource(dataset, description, settings)


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
