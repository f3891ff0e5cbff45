"""Audio files <-> token files in batches: ``compress`` writes one ``.tokens.npz`` per audio file,
``decompress`` one 16-bit wav per token file.

Output names mirror the inputs: each file's path relative to its root, with its suffix replaced
(``.wav``/``.flac``/... -> ``.tokens.npz``, ``.tokens.npz`` -> ``.wav``). The root of a file found
in a folder is that folder; the root of a file named directly is its own folder; ``root=``
overrides both. When two inputs would get the same output name (``x.wav`` and ``x.flac`` side by
side), each of them keeps its whole name and gets the new suffix appended (``x.wav.tokens.npz``,
``x.flac.tokens.npz``); when that still collides (the same relative path under two roots) the
call fails before writing anything.

Every file is written atomically, so an interrupted run leaves complete files only. An output that
already exists is refused before any work starts unless ``overwrite=True``. A file the codec cannot
take (unreadable, empty, NaN/Inf, too short) stops the run with an error naming its path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from codec.checks import check_int
from codec.data.corpus import AUDIO_SUFFIXES
from codec.io import refuse_existing
from codec.sampling import DecodeSettings
from codec.token_file import SUFFIX

__all__ = [
    "compress",
    "decompress",
    "find_inputs",
    "find_audio_files",
    "find_token_files",
    "output_paths",
    "VariantMismatchError",
]

PathLike = str | os.PathLike


class VariantMismatchError(ValueError):
    """A token file holds tokens of another codec variant than the one decoding it."""


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def _is_token_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def find_inputs(paths: Sequence[PathLike], matches: Callable[[Path], bool], what: str) -> list[tuple[Path, Path]]:
    """(file, root) for each file named in ``paths`` and each matching file under a named folder.

    A missing path, or a folder without a matching file, is a ``FileNotFoundError`` naming ``what``.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and matches(p))
            if not files:
                raise FileNotFoundError(f"folder {str(item)!r} holds no {what}.")
            pairs = [(f, path) for f in files]
        elif path.is_file():
            pairs = [(path, path.parent)]
        else:
            raise FileNotFoundError(f"input {str(item)!r} does not exist.")
        for file, root in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, root))
    return found


def find_audio_files(paths: Sequence[PathLike]) -> list[Path]:
    """Audio files named in ``paths`` or found (recursively) in its folders."""
    return [f for f, _ in find_inputs(paths, _is_audio, f"audio files ({', '.join(AUDIO_SUFFIXES)})")]


def find_token_files(paths: Sequence[PathLike]) -> list[Path]:
    """Token files named in ``paths`` or found (recursively) in its folders."""
    return [f for f, _ in find_inputs(paths, _is_token_file, f"token files (*{SUFFIX})")]


def _strip_suffix(name: str) -> str:
    if name.endswith(SUFFIX):
        return name[: -len(SUFFIX)]
    return name[: -len(Path(name).suffix)] if Path(name).suffix else name


def output_paths(inputs: Sequence[tuple[Path, Path]], out_dir: PathLike, suffix: str) -> list[Path]:
    """The output file of each (file, root) pair under ``out_dir`` (see the module docstring)."""
    out_dir = Path(out_dir)
    relative = []
    for file, root in inputs:
        try:
            relative.append(file.relative_to(root))
        except ValueError:
            raise ValueError(f"{str(file)!r} is not under root {str(root)!r}.") from None
    short = [rel.with_name(_strip_suffix(rel.name) + suffix) for rel in relative]
    counts: dict[Path, int] = {}
    for name in short:
        counts[name] = counts.get(name, 0) + 1
    names = [s if counts[s] == 1 else rel.with_name(rel.name + suffix) for s, rel in zip(short, relative)]
    owner: dict[Path, Path] = {}
    for name, (file, _) in zip(names, inputs):
        if name in owner:
            raise ValueError(
                f"{str(owner[name])!r} and {str(file)!r} would both be written to {str(out_dir / name)!r}; "
                "pass their common folder instead of the files, or run them separately."
            )
        owner[name] = file
    return [out_dir / name for name in names]


def _with_root(inputs: list[tuple[Path, Path]], root: PathLike | None) -> list[tuple[Path, Path]]:
    return inputs if root is None else [(file, Path(root)) for file, _ in inputs]


def planned_outputs(
    paths: Sequence[PathLike], out_dir: PathLike, kind: str, overwrite: bool = False, root: PathLike | None = None
) -> list[Path]:
    """The files ``compress`` (kind "encode") or ``decompress`` ("decode") would write, checked without a
    codec: every input exists, no two outputs collide, none exists unless ``overwrite``, and (decode)
    every token file reads. Command lines call it before they load a model."""
    from codec.token_file import load_tokens

    if kind == "encode":
        inputs = _with_root(find_inputs(paths, _is_audio, f"audio files ({', '.join(AUDIO_SUFFIXES)})"), root)
        targets = output_paths(inputs, out_dir, SUFFIX)
    elif kind == "decode":
        inputs = _with_root(find_inputs(paths, _is_token_file, f"token files (*{SUFFIX})"), root)
        targets = output_paths(inputs, out_dir, ".wav")
    else:
        raise ValueError(f"kind must be 'encode' or 'decode', got {kind!r}.")
    refuse_existing(targets, overwrite)
    if kind == "decode":
        for file, _ in inputs:
            load_tokens(file)
    return targets


def _batches(n: int, batch_size: int, desc: str, progress: bool | None):
    """The first index of every batch, with a bar over the batches when there are several (the
    codec's own bars show the work inside each one)."""
    from codec.progress import progress_bar, progress_enabled

    starts = range(0, n, batch_size)
    return progress_bar(starts, desc=desc, unit="batch", progress=progress_enabled(progress) and len(starts) > 1)


def compress(
    codec: Any,
    paths: Sequence[PathLike],
    out_dir: PathLike,
    *,
    batch_size: int = 8,
    mono: str = "first",
    root: PathLike | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> list[Path]:
    """Encode audio files (or folders of them) to token files under ``out_dir``; returns the files written.

    codec: a ``SemantiCodec``. mono: "first" channel (official) or "mean" of the channels.
    batch_size: files per ``codec.encode`` call. root: name outputs relative to this folder.
    overwrite: replace token files that exist (otherwise ``OutputExistsError`` before any work).
    progress: bars over the batches and inside each; None shows them only when stderr is a terminal.
    """
    from codec.audio import check_long_enough, check_mono, load_audio, probe_audio, resampled_length
    from codec.token_file import TokenFile, save_tokens

    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_mono(mono)
    inputs = _with_root(find_inputs(paths, _is_audio, f"audio files ({', '.join(AUDIO_SUFFIXES)})"), root)
    targets = output_paths(inputs, out_dir, SUFFIX)
    refuse_existing(targets, overwrite)
    files = [f for f, _ in inputs]
    for path in files:  # an unreadable or empty file stops the run before anything is written
        frames, rate = probe_audio(path)
        check_long_enough(resampled_length(frames, rate, codec.sample_rate), codec.sample_rate,
                          codec.config.win_length, f"audio file {str(path)!r}")
    for start in _batches(len(files), batch_size, "encode", progress):
        batch = files[start : start + batch_size]
        loaded = [load_audio(path, mono=mono) for path in batch]
        result = codec.encode([w for w, _ in loaded], [r for _, r in loaded], batch_size=batch_size,
                              names=[f"audio file {str(path)!r}" for path in batch], progress=progress)
        for i, tokens in enumerate(result.unbatch()):
            wave, rate = loaded[i]
            record = TokenFile(
                tokens=tokens.cpu(), codec_variant=codec.variant, token_rate=codec.config.token_rate,
                semantic_vocab_size=codec.semantic_vocab_size, acoustic_vocab_size=codec.acoustic_vocab_size,
                num_samples=resampled_length(wave.numel(), rate, codec.sample_rate), source_sample_rate=rate,
                source=str(batch[i]),
            )
            save_tokens(targets[start + i], record)
    return targets


def _write_wav(path: Path, wave: torch.Tensor, sample_rate: int) -> Path:
    import soundfile as sf

    from codec.io import atomic_write

    data = wave.float().clamp(-1, 1).cpu().numpy()
    return atomic_write(path, lambda tmp: sf.write(tmp, data, sample_rate, subtype="PCM_16", format="WAV"))


def decompress(
    codec: Any,
    token_files: Sequence[PathLike],
    out_dir: PathLike,
    settings: DecodeSettings | None = None,
    *,
    batch_size: int = 8,
    generator: torch.Generator | None = None,
    root: PathLike | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> list[Path]:
    """Decode token files (or folders of them) to 16-bit wavs of their original length; returns the files written.

    Every file must be a valid token file (``codec.token_file.load_tokens``) of ``codec.variant``,
    checked before anything is decoded.
    settings: sampler, steps, guidance and eta (default ``DecodeSettings()``, the official DDIM).
    batch_size: clips per ``codec.decode`` call; generator: seeds the sampler's noise.
    overwrite: replace wavs that exist (otherwise ``OutputExistsError`` before any work).
    progress: bars over the batches and inside each (UNet steps, VAE + vocoder); None shows them
    only when stderr is a terminal.
    """
    from codec.io import pad_stack
    from codec.token_file import load_tokens

    settings = settings or DecodeSettings()
    if not isinstance(settings, DecodeSettings):
        raise TypeError(f"settings must be a codec.sampling.DecodeSettings, got {type(settings).__name__}.")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    inputs = _with_root(find_inputs(token_files, _is_token_file, f"token files (*{SUFFIX})"), root)
    targets = output_paths(inputs, out_dir, ".wav")
    refuse_existing(targets, overwrite)
    records = [load_tokens(f) for f, _ in inputs]
    for (path, _), record in zip(inputs, records):
        if record.codec_variant != codec.variant:
            raise VariantMismatchError(
                f"{str(path)!r} holds tokens of codec {record.codec_variant!r} ({record.token_rate} tokens/s) but the "
                f"codec is {codec.variant!r}; decode with the codec that made them."
            )
    for start in _batches(len(records), batch_size, "decode", progress):
        batch = records[start : start + batch_size]
        tokens, lengths = pad_stack([r.tokens for r in batch])
        decoded = codec.decode(
            tokens.to(codec.device), lengths.to(codec.device), steps=settings.steps, sampler=settings.sampler,
            cfg_scale=settings.cfg_scale, eta=settings.eta, generator=generator, batch_size=batch_size,
            progress=progress,
        )
        for i, wave in enumerate(decoded.unbatch()):
            _write_wav(targets[start + i], wave[: batch[i].num_samples], decoded.sample_rate)
    return targets
