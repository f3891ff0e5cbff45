"""The metadata files of an audio folder (``audiofolder`` convention): ``metadata.csv`` or
``metadata.jsonl`` in any folder of the tree, one per folder, whose ``file_name`` gives an audio file's
path relative to that folder; the other columns are carried to its token row.

Anything that would make a row's metadata ambiguous or lost (two metadata files in one folder, a file
listed twice, a record without ``file_name``, text that is not UTF-8 or not JSON) is a ``ConfigError``
naming the file and line, before any work.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from plumbing.config_file import ConfigError

__all__ = ["METADATA_FILES", "folder_metadata", "metadata_records"]

METADATA_FILES = ("metadata.csv", "metadata.jsonl")


def metadata_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of one metadata file; a ``ConfigError`` naming the file and line when it is
    not UTF-8, not CSV / JSON lines, or a record has no ``file_name``."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Excel's CSV) is not part of the header
    except UnicodeDecodeError as err:
        raise ConfigError(f"metadata file {str(path)!r} is not UTF-8 text ({err}); save it as UTF-8.") from err
    records: list[tuple[int, dict[str, Any]]] = []
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        if "file_name" not in header:
            raise ConfigError(f"metadata file {str(path)!r} has no file_name column; its columns are {header}. "
                              "file_name gives each audio file's path relative to the metadata file's folder.")
        for record in reader:
            if None in record:
                raise ConfigError(f"metadata file {str(path)!r} line {reader.line_num} has more fields than the "
                                  f"header {header}.")
            records.append((reader.line_num, record))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"metadata file {str(path)!r} line {number} is not valid JSON ({err}).") from err
            if not isinstance(record, dict):
                raise ConfigError(f"metadata file {str(path)!r} line {number} is not a JSON object: {line[:80]!r}.")
            if "file_name" not in record:
                raise ConfigError(f"metadata file {str(path)!r} line {number} has no file_name; its keys are "
                                  f"{list(record)}. file_name gives the audio file's path relative to the "
                                  "metadata file's folder.")
            records.append((number, record))
    for number, record in records:
        if not isinstance(record["file_name"], str) or not record["file_name"].strip():
            raise ConfigError(f"metadata file {str(path)!r} line {number} has an empty or non-text file_name "
                              f"({record['file_name']!r}).")
    return records


def folder_metadata(folder: Path) -> tuple[dict[Path, tuple[dict[str, Any], str, Path]], list[str], list[str]]:
    """audiofolder metadata: absolute audio path -> (its row without file_name, where it is listed, the path
    as listed); the columns in order; the columns of CSV files (text)."""
    rows: dict[Path, tuple[dict[str, Any], str, Path]] = {}
    columns: list[str] = []
    csv_columns: list[str] = []
    found = sorted(p for name in METADATA_FILES for p in folder.rglob(name) if p.is_file())
    for parent in sorted({p.parent for p in found}):
        both = [p for p in found if p.parent == parent]
        if len(both) > 1:
            raise ConfigError(f"{str(both[0])!r} and {str(both[1])!r} are both there: one metadata file per "
                              "folder; merge them into one and delete the other.")
    for meta_path in found:
        for number, record in metadata_records(meta_path):
            listed = Path(os.path.normpath(meta_path.parent / str(record.pop("file_name"))))
            target = listed.resolve()
            where = f"{str(meta_path.relative_to(folder))!r} line {number}"
            if target in rows:
                raise ConfigError(f"{str(listed)!r} is listed twice: {rows[target][1]} and {where}; "
                                  "keep one row per audio file.")
            rows[target] = (record, where, listed)
            columns.extend(c for c in record if c not in columns)
            if meta_path.suffix == ".csv":
                csv_columns.extend(c for c in record if c not in csv_columns)
    return rows, columns, csv_columns
