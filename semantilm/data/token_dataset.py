"""Token datasets on disk: recognise one, and save one with the codec that made it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codec.io import write_json

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["TOKEN_INFO_FILE", "is_token_dataset", "save_token_dataset", "token_dataset_info"]

TOKEN_INFO_FILE = "semantilm_token_dataset.json"


def is_token_dataset(dataset: Any) -> bool:
    """Whether ``dataset`` already holds codec tokens (``encode_audio_dataset`` output)."""
    from semantilm.data.tokenize import TOKEN_COLUMNS

    names = getattr(dataset, "column_names", None) or []
    return all(c in names for c in TOKEN_COLUMNS[:2])


def save_token_dataset(dataset: Dataset, directory: str | os.PathLike, codec_info: dict[str, Any]) -> Path:
    """``save_to_disk`` a token dataset together with the codec it was made with."""
    directory = Path(directory)
    dataset.save_to_disk(str(directory))
    info = {"format": "semantilm-token-dataset", "version": 1, "codec": codec_info, "num_rows": len(dataset)}
    write_json(directory / TOKEN_INFO_FILE, info)
    return directory


def token_dataset_info(directory: str | os.PathLike) -> dict[str, Any] | None:
    """What ``save_token_dataset`` recorded about a token dataset folder (None if nothing)."""
    path = Path(directory) / TOKEN_INFO_FILE
    if not path.is_file():
        return None
    from codec.io import read_json_object

    return read_json_object(path, "token dataset info", "tokenise the data set again")
