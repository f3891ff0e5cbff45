"""Where training audio comes from: one function that turns a source name into a ``datasets.Dataset``.

Sources (``load_corpus(source)``):

* ``"synthetic"``: the toolkit's captioned synthetic sound set (``codec.data.synthetic``).
* a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``: audio rows, or
  token rows written by ``semantilm tokenize`` (recognised by their token columns).
* a Parquet or Arrow file, or a folder of them (e.g. a token folder of ``semantilm tokenize``).
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

from codec.audio import READABLE_FORMATS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from datasets import Dataset

    from codec.data.synthetic import SyntheticSoundConfig

__all__ = [
    "AUDIO_SUFFIXES",
    "AUDIO_LIKE_SUFFIXES",
    "READABLE_FORMATS",
    "SYNTHETIC",
    "load_corpus",
    "audio_folder_dataset",
    "audio_like_files",
    "audio_cell_to_waveform",
    "decode_audio_cell",
    "undecoded_audio",
    "pcm_to_float",
    "parquet_files",
    "check_columns",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
# Files that look like audio: tokenising takes every one as an input, and one that soundfile cannot
# read becomes a failure that says so, instead of being passed over.
AUDIO_LIKE_SUFFIXES = AUDIO_SUFFIXES + (
    ".opus", ".oga", ".caf", ".au", ".snd", ".w64", ".aifc", ".m4a", ".m4b", ".aac", ".alac", ".wma", ".webm",
    ".weba", ".mka", ".mp4", ".mp2", ".mpga", ".amr", ".3gp", ".ac3", ".dts", ".ape", ".wv", ".tta", ".spx", ".ra",
)
SYNTHETIC = "synthetic"


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def parquet_files(path: str | os.PathLike) -> tuple[str, list[Path]] | None:
    """("parquet" | "arrow", files) when ``path`` is such a file, or a folder of them (recursive,
    hidden folders left out) without audio files; None otherwise."""
    path = Path(path)
    kinds = {".parquet": "parquet", ".arrow": "arrow"}
    if path.is_file():
        return (kinds[path.suffix], [path]) if path.suffix in kinds else None
    if not path.is_dir() or audio_files(path):
        return None
    for suffix, kind in kinds.items():
        files = sorted(f for f in path.rglob(f"*{suffix}")
                       if not any(part.startswith(".") for part in f.relative_to(path).parts))
        if files:
            return kind, files
    return None


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive, sorted)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def audio_like_files(folder: str | os.PathLike) -> list[Path]:
    """Files under ``folder`` that look like audio (:data:`AUDIO_LIKE_SUFFIXES`; recursive, sorted)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_LIKE_SUFFIXES)


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
    elif path.exists() and parquet_files(path):
        from datasets import load_dataset

        kind, files = parquet_files(path)
        dataset = load_dataset(kind, data_files=[str(f) for f in files], split="train")
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
    dataset = undecoded_audio(dataset)
    if max_examples is not None and len(dataset) > max_examples:
        dataset = dataset.select(range(max_examples))
    if len(dataset) == 0:
        raise ValueError(f"dataset {source!r} has no rows.")
    return dataset


def pcm_to_float(array: Any) -> np.ndarray:
    """Samples as float32: integer PCM scaled to [-1, 1) (unsigned 8-bit centred first), floats as they are.

    64-bit integers (Python ints stored by ``datasets``) are read as 16-, 24- or 32-bit PCM, the
    narrowest their peak fits."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind == "u":
        half = float(np.iinfo(array.dtype).max // 2 + 1)
        return ((array.astype(np.float64) - half) / half).astype(np.float32)
    if array.dtype.kind == "i":
        scale = float(-np.iinfo(array.dtype).min)
        if array.dtype.itemsize == 8:  # Python ints in a list column: no PCM is 64-bit, take the width they fit
            peak = int(np.abs(array).max()) if array.size else 0
            scale = next(float(2**b) for b in (15, 23, 31, 63) if peak <= 2**b)
        return (array.astype(np.float64) / scale).astype(np.float32)
    if array.dtype.kind == "b" or array.dtype.kind not in "fc":
        raise ValueError(f"audio samples must be numbers, got dtype {array.dtype}.")
    return array.astype(np.float32, copy=False)


def _read_encoded(source: Any) -> tuple[np.ndarray, int]:
    """Encoded audio (a path or a file-like object) -> (float32 [N, channels], rate) via soundfile."""
    import soundfile as sf

    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise ValueError(f"cannot decode the audio ({type(err).__name__}: {err}); {READABLE_FORMATS}") from err
    return data, int(rate)


def decode_audio_cell(value: Any, sample_rate: int | None = None, column: str = "audio",
                      mono: str = "first") -> tuple[torch.Tensor, int]:
    """One audio cell -> (FloatTensor[N] mono, sample rate), without torchcodec.

    value: ``{"array", "sampling_rate"}`` (decoded), ``{"bytes", "path"}`` (``datasets.Audio(decode=False)``:
        the bytes are decoded with soundfile, else the file at ``path``), encoded ``bytes``, a torchcodec
        decoder, or a raw array (then ``sample_rate`` is its rate).
    Integer PCM is scaled to [-1, 1); several channels follow ``codec.audio.to_mono`` (``mono="first"``:
    the first channel, as the official SemantiCodec; channels are the shorter axis of a 2-D array).
    Raises ValueError for an unreadable cell or a missing rate (no check of length or values here).
    """
    import io

    import numpy as np
    import torch

    from codec.audio import to_mono

    encoded = False  # decoded here from a file: channels first for sure
    if isinstance(value, dict) and value.get("array") is not None:
        array, sr = pcm_to_float(value["array"]), value.get("sampling_rate") or sample_rate
    elif isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else str(value["path"])
        array, sr = _read_encoded(source)
        array, encoded = array.T, True  # [channels, N]
    elif isinstance(value, (bytes, bytearray, memoryview)):
        array, sr = _read_encoded(io.BytesIO(bytes(value)))
        array, encoded = array.T, True
    elif hasattr(value, "get_all_samples"):  # a torchcodec decoder (datasets >= 4 with decoding on)
        samples = value.get_all_samples()
        array, sr = pcm_to_float(samples.data.numpy()), samples.sample_rate
    elif isinstance(value, dict):
        raise ValueError(f"column {column!r} has an audio cell with none of array, bytes, path: keys {sorted(value)}.")
    else:
        array, sr = pcm_to_float(value), sample_rate
    if sr is None:
        raise ValueError(
            f"column {column!r} holds raw arrays without a sampling rate; pass sample_rate=... "
            "or use datasets.Audio cells ({'array', 'sampling_rate'})."
        )
    wav = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if wav.numel() == 0:
        return wav.reshape(0), int(sr)
    if wav.ndim == 2 and not encoded and wav.shape[0] > wav.shape[1]:
        wav = wav.T  # a raw array with channels last -> channels first
    if wav.ndim not in (1, 2):
        raise ValueError(f"column {column!r} has an audio cell of shape {tuple(wav.shape)}; expected [N] or [channels, N].")
    return to_mono(wav, mono), int(sr)


def undecoded_audio(dataset: Any) -> Any:
    """``dataset`` with every ``datasets.Audio`` column cast to ``Audio(decode=False)``: cells stay
    ``{"bytes", "path"}`` for :func:`decode_audio_cell` (datasets >= 4 decodes with torchcodec, which needs FFmpeg)."""
    from datasets import Audio

    features = getattr(dataset, "features", None) or {}
    for name, feature in features.items():
        if isinstance(feature, Audio) and feature.decode:
            dataset = dataset.cast_column(name, Audio(sampling_rate=feature.sampling_rate, decode=False))
    return dataset


def audio_cell_to_waveform(value: Any, sample_rate: int | None, column: str) -> tuple[torch.Tensor, int]:
    """One audio cell -> (FloatTensor[N] mono, sample rate); an empty or non-finite clip is a ValueError."""
    import torch

    wav, sr = decode_audio_cell(value, sample_rate, column)
    if wav.numel() == 0:
        raise ValueError(f"column {column!r} has an audio cell of shape {tuple(wav.shape)}; expected a non-empty clip.")
    if not bool(torch.isfinite(wav).all()):
        raise ValueError(f"column {column!r} has an audio cell with NaN or Inf samples.")
    return wav, sr


def check_columns(names: Sequence[str] | None, audio_column: str, caption_column: str | None) -> None:
    if names is None:
        return
    for argument, column in (("audio_column", audio_column), ("caption_column", caption_column)):
        if column is not None and column not in names:
            raise ValueError(f"{argument}={column!r} is not a column of the dataset; it has {list(names)}.")
