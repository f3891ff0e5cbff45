"""The ``metadata.csv`` that ``semantilm generate`` writes beside its wavs: ``file_name,caption`` per clip,
the audiofolder convention, so that the folder can be scored (``semantilm eval-generation``) or loaded
with ``datasets.load_dataset("audiofolder", ...)`` with its captions.

A folder that already has a ``metadata.csv`` keeps its other rows and columns: rows of the files written
now are replaced or added, so generating into one folder several times lists every clip once.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from plumbing.io import atomic_write

__all__ = ["METADATA_FILE", "planned_metadata", "write_metadata"]

METADATA_FILE = "metadata.csv"


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of an existing metadata.csv; a ``ValueError`` naming it when it is not one."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{str(path)!r} is not a readable CSV file ({err}); move it away or fix it, "
                         "then generate again.") from None
    if "file_name" not in columns:
        raise ValueError(f"{str(path)!r} has no file_name column (audiofolder convention, columns "
                         f"file_name,caption); move it away or fix it, then generate again.")
    return columns, rows


def planned_metadata(folder: str | os.PathLike, file_names: Sequence[str], captions: Sequence[str]) -> str:
    """The text of ``folder/metadata.csv`` once ``file_names`` (relative to ``folder``) with ``captions``
    are written: the existing file's rows (other than these files) first, then one row per file.

    Called before any generation, so that an unreadable existing file stops the run before work.
    """
    if len(file_names) != len(captions):
        raise ValueError(f"got {len(file_names)} file names but {len(captions)} captions; pass one caption per file.")
    path = Path(folder) / METADATA_FILE
    columns, rows = _read_rows(path) if path.is_file() else (["file_name", "caption"], [])
    if "caption" not in columns:
        columns.append("caption")
    new = set(file_names)
    kept = [r for r in rows if r.get("file_name") not in new]
    kept += [{"file_name": name, "caption": caption} for name, caption in zip(file_names, captions)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in columns} for r in kept)
    return buffer.getvalue()


def write_metadata(folder: str | os.PathLike, text: str) -> Path:
    """Write the ``metadata.csv`` text of :func:`planned_metadata` into ``folder`` (atomically)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return atomic_write(Path(folder) / METADATA_FILE, text)
