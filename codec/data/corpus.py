"""Where training audio comes from: one function that turns a source name into a ``datasets.Dataset``.

Sources (``load_corpus(source)``):

* ``"synthetic"``: the toolkit's captioned synthetic sound set (``codec.data.synthetic``).
* a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``: audio rows, or
  token rows written by ``semantilm tokenize`` (recognised by their token columns).
* a folder of audio files (searched recursively): an ``audio`` column of
  ``{"array", "sampling_rate"}`` cells and a ``caption`` column read from a ``.txt`` file of the
  same name beside each audio file ("" when there is none).
* anything else is passed to ``datasets.load_dataset`` (a hub dataset; needs the network).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from datasets import Dataset

    from codec.data.synthetic import SyntheticSoundConfig

__all__ = [
    "AUDIO_SUFFIXES",
    "SYNTHETIC",
    "load_corpus",
    "audio_folder_dataset",
    "audio_cell_to_waveform",
    "check_columns",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SYNTHETIC = "synthetic"


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
        from codec.data.synthetic import SyntheticSoundConfig, synthetic_dataset

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


def audio_cell_to_waveform(value: Any, sample_rate: int | None, column: str) -> tuple[torch.Tensor, int]:
    """One audio cell -> (FloatTensor[N] mono, sample rate)."""
    import numpy as np
    import torch

    if isinstance(value, dict) and "array" in value:
        array, sr = value["array"], value.get("sampling_rate", sample_rate)
    elif hasattr(value, "get_all_samples"):  # datasets >= 4 decodes Audio to a torchcodec decoder
        samples = value.get_all_samples()
        array, sr = samples.data, samples.sample_rate
    else:
        array, sr = value, sample_rate
    if sr is None:
        raise ValueError(
            f"column {column!r} holds raw arrays without a sampling rate; pass sample_rate=... "
            "or use datasets.Audio cells ({'array', 'sampling_rate'})."
        )
    wav = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if wav.ndim == 2:  # channels first (torchcodec) or channels last (soundfile): average to mono
        wav = wav.mean(0) if wav.shape[0] <= wav.shape[1] else wav.mean(1)
    if wav.ndim != 1 or wav.numel() == 0:
        raise ValueError(f"column {column!r} has an audio cell of shape {tuple(wav.shape)}; expected a non-empty clip.")
    if not bool(torch.isfinite(wav).all()):
        raise ValueError(f"column {column!r} has an audio cell with NaN or Inf samples.")
    return wav, int(sr)


def check_columns(names: Sequence[str] | None, audio_column: str, caption_column: str | None) -> None:
    if names is None:
        return
    for argument, column in (("audio_column", audio_column), ("caption_column", caption_column)):
        if column is not None and column not in names:
            raise ValueError(f"{argument}={column!r} is not a column of the dataset; it has {list(names)}.")
