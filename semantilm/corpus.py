"""Where training audio comes from: one function that turns a source name into a ``datasets.Dataset``.

Sources (``load_corpus(source)``):

* ``"synthetic"``: the toolkit's captioned synthetic sound set (``semantilm.synthetic``).
* a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``: audio rows, or
  token rows written by ``semantilm tokenize`` (recognised by their token columns).
* a folder of audio files (searched recursively): an ``audio`` column of
  ``{"array", "sampling_rate"}`` cells and a ``caption`` column read from a ``.txt`` file of the
  same name beside each audio file ("" when there is none).
* anything else is passed to ``datasets.load_dataset`` (a hub dataset; needs the network).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from .synthetic import SyntheticSoundConfig

__all__ = [
    "AUDIO_SUFFIXES",
    "SYNTHETIC",
    "TOKEN_INFO_FILE",
    "load_corpus",
    "audio_folder_dataset",
    "is_token_dataset",
    "save_token_dataset",
    "token_dataset_info",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SYNTHETIC = "synthetic"
TOKEN_INFO_FILE = "semantilm_token_dataset.json"


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive, sorted)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def audio_folder_dataset(folder: str | os.PathLike, mono: str = "first") -> Dataset:
    """A folder of audio files -> ``Dataset`` with columns audio, caption, path (files read here)."""
    from datasets import Dataset

    from codec.audio import load_audio

    files = audio_files(folder)
    if not files:
        raise ValueError(f"folder {str(folder)!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")

    def rows():
        for path in files:
            wave, rate = load_audio(path, mono=mono)
            text = path.with_suffix(".txt")
            caption = text.read_text().strip() if text.is_file() else ""
            yield {"audio": {"array": wave.numpy(), "sampling_rate": int(rate)}, "caption": caption, "path": str(path)}

    return Dataset.from_list(list(rows()))


def load_corpus(
    source: str,
    split: str = "train",
    synthetic: SyntheticSoundConfig | None = None,
    max_examples: int | None = None,
) -> Dataset:
    """The dataset named by ``source`` (see the module docstring), first ``max_examples`` rows.

    synthetic: the synthetic set's size, length and seed (``source == "synthetic"``).
    """
    from datasets import DatasetDict

    if not isinstance(source, str) or not source:
        raise ValueError(f"dataset source must be a non-empty string, got {source!r}.")
    path = Path(source).expanduser()
    if source == SYNTHETIC:
        from .synthetic import SyntheticSoundConfig, synthetic_dataset

        config = synthetic or SyntheticSoundConfig()
        if max_examples is not None and max_examples < config.num_examples:
            import dataclasses

            config = dataclasses.replace(config, num_examples=max_examples)
        dataset = synthetic_dataset(config)
    elif path.is_dir() and _is_saved_dataset(path):
        from datasets import load_from_disk

        dataset = load_from_disk(str(path))
    elif path.is_dir():
        dataset = audio_folder_dataset(path)
    elif path.exists() or source.startswith((".", "/", "~")):
        raise ValueError(
            f"dataset {source!r} is neither a folder of audio files nor a folder saved with save_to_disk."
        )
    else:
        from datasets import load_dataset

        dataset = load_dataset(source, split=split)
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise ValueError(f"dataset {source!r} has no split {split!r}; it has {sorted(dataset)}.")
        dataset = dataset[split]
    if max_examples is not None and len(dataset) > max_examples:
        dataset = dataset.select(range(max_examples))
    if len(dataset) == 0:
        raise ValueError(f"dataset {source!r} has no rows.")
    return dataset


def is_token_dataset(dataset: Any) -> bool:
    """Whether ``dataset`` already holds codec tokens (``encode_audio_dataset`` output)."""
    from .data import TOKEN_COLUMNS

    names = getattr(dataset, "column_names", None) or []
    return all(c in names for c in TOKEN_COLUMNS[:2])


def save_token_dataset(dataset: Dataset, directory: str | os.PathLike, codec_info: dict[str, Any]) -> Path:
    """``save_to_disk`` a token dataset together with the codec it was made with."""
    directory = Path(directory)
    dataset.save_to_disk(str(directory))
    info = {"format": "semantilm-token-dataset", "version": 1, "codec": codec_info, "num_rows": len(dataset)}
    from .tokenizer import _atomic_write

    _atomic_write(directory / TOKEN_INFO_FILE, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    return directory


def token_dataset_info(directory: str | os.PathLike) -> dict[str, Any] | None:
    """What ``save_token_dataset`` recorded about a token dataset folder (None if nothing)."""
    path = Path(directory) / TOKEN_INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else None
