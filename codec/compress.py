"""Audio files <-> token files in batches: ``compress`` writes one ``.tokens.npz`` per audio file,
``decompress`` one 16-bit wav per token file.

Output names mirror the inputs: each file's path relative to its root, with its suffix replaced
(``.wav``/``.flac``/... -> ``.tokens.npz``, ``.tokens.npz`` -> ``.wav``). The root of a file found
in a folder is that folder; the root of a file named directly is its own folder; ``root=``
overrides both. When two inputs would get the same output name (``x.wav`` and ``x.flac`` side by
side), each of them keeps its whole name and gets the new suffix appended (``x.wav.tokens.npz``,
``x.flac.tokens.npz``); when that still collides (the same relative path under two roots) the
call fails before writing anything.

Every file is written atomically, so an interrupted run leaves complete files only, and running the
same call again continues it: outputs that the earlier run finished (same input, unchanged since, same
codec and settings; see :mod:`codec.earlier_outputs`) are kept, the others are written. Any other
output that already exists is refused before any work starts unless ``overwrite=True``. A file the
codec cannot take (unreadable, empty, NaN/Inf, too short) stops the run with an error naming its path.

``paths`` / ``token_files`` take one path (``str`` or ``os.PathLike``) or a list of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import torch

from codec.data.corpus import AUDIO_LIKE_SUFFIXES, AUDIO_SUFFIXES
from codec.sampling import DecodeSettings
from codec.token_file import SUFFIX
from plumbing.checks import check_int
from plumbing.io import check_output_path, path_list

logger = logging.getLogger(__name__)

__all__ = [
    "compress",
    "decompress",
    "find_inputs",
    "find_audio_files",
    "find_token_files",
    "output_paths",
    "planned_outputs",
    "OutputPlan",
    "VariantMismatchError",
]

PathLike = str | os.PathLike
Paths = PathLike | Iterable[PathLike]  # one path, or a list of them


class VariantMismatchError(ValueError):
    """A token file holds tokens of another codec variant than the one decoding it."""


def _is_audio(path: Path) -> bool:
    """Files that look like audio: those soundfile cannot read are named when they are read, never passed over."""
    return path.suffix.lower() in AUDIO_LIKE_SUFFIXES


def _is_token_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def find_inputs(paths: Paths, matches: Callable[[Path], bool], what: str) -> list[tuple[Path, Path]]:
    """(file, root) for each file named in ``paths`` (one path or a list) and each matching file under a
    named folder. A missing path, or a folder without a matching file, is a ``FileNotFoundError`` naming ``what``.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for item in path_list(paths):
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and matches(p))
            if not files:
                raise FileNotFoundError(f"folder {os.fspath(item)!r} holds no {what}.")
            pairs = [(f, path) for f in files]
        elif path.is_file():
            pairs = [(path, path.parent)]
        else:
            raise FileNotFoundError(f"input {os.fspath(item)!r} does not exist.")
        for file, root in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, root))
    return found


def find_audio_files(paths: Paths) -> list[Path]:
    """Audio files named in ``paths`` or found (recursively) in its folders."""
    return [f for f, _ in find_inputs(paths, _is_audio, f"audio files ({', '.join(AUDIO_SUFFIXES)})")]


def find_token_files(paths: Paths) -> list[Path]:
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


@dataclass
class OutputPlan:
    """What a call writes: each (input file, root) and its output, and the outputs an earlier run of the
    same call finished (``kept``: indices; they are not written again)."""

    inputs: list[tuple[Path, Path]]
    targets: list[Path]
    kept: list[int]

    @property
    def pending(self) -> list[int]:
        kept = set(self.kept)
        return [i for i in range(len(self.targets)) if i not in kept]


def planned_outputs(
    paths: Paths, out_dir: PathLike, kind: str, overwrite: bool = False, root: PathLike | None = None, *,
    mono: str = "first", settings: DecodeSettings | None = None, seed: int | None = None,
    decoder_dtype: str | None = None, variant: str | None = None, cfg_scale: float | None = None,
) -> OutputPlan:
    """The files ``compress`` (kind "encode") or ``decompress`` ("decode") would write and the ones it
    would keep, checked without a codec: every input exists, ``out_dir`` can be a folder, no two outputs
    collide, every existing output is the same call's earlier output (else ``OutputExistsError``) unless
    ``overwrite``, and (decode) every token file reads. Command lines call it before they load a model;
    ``variant`` / ``cfg_scale`` (known once the codec is loaded) are then left out of the comparison.
    mono: the channel rule of encode. settings / seed / decoder_dtype: how decode samples."""
    from codec.earlier_outputs import decode_stamp, decoded_from, encoded_from, split_outputs
    from codec.token_file import load_tokens

    check_output_path(out_dir, "folder", "output folder")
    if kind == "encode":
        inputs = _with_root(find_inputs(paths, _is_audio, f"audio files ({', '.join(AUDIO_SUFFIXES)})"), root)
        targets = output_paths(inputs, out_dir, SUFFIX)

        def why_not(i: int) -> str | None:
            return encoded_from(targets[i], inputs[i][0], mono=mono, variant=variant)
    elif kind == "decode":
        inputs = _with_root(find_inputs(paths, _is_token_file, f"token files (*{SUFFIX})"), root)
        targets = output_paths(inputs, out_dir, ".wav")
        records = [load_tokens(file) for file, _ in inputs]
        settings = settings or DecodeSettings()

        def why_not(i: int) -> str | None:
            stamp = decode_stamp(inputs[i][0], settings, seed=seed, decoder_dtype=decoder_dtype, variant=variant,
                                 cfg_scale=cfg_scale)
            return decoded_from(targets[i], inputs[i][0], records[i].num_samples, stamp)
    else:
        raise ValueError(f"kind must be 'encode' or 'decode', got {kind!r}.")
    return OutputPlan(inputs, targets, split_outputs(targets, why_not, overwrite))


def _report_kept(plan: OutputPlan, what: str) -> None:
    if plan.kept:
        logger.info("kept %d %s that an earlier run wrote from the same inputs and settings (first: %s)",
                    len(plan.kept), what, plan.targets[plan.kept[0]])


def _batches(n: int, batch_size: int, desc: str, progress: bool | None):
    """The first index of every batch, with a bar over the batches when there are several (the
    codec's own bars show the work inside each one)."""
    from plumbing.progress import progress_bar, progress_enabled

    starts = range(0, n, batch_size)
    return progress_bar(starts, desc=desc, unit="batch", progress=progress_enabled(progress) and len(starts) > 1)


def compress(
    codec: Any,
    paths: Paths,
    out_dir: PathLike,
    *,
    batch_size: int = 8,
    mono: str = "first",
    root: PathLike | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> list[Path]:
    """Encode audio files (or folders of them) to token files under ``out_dir``; returns the files written.

    codec: a ``SemantiCodec``. paths: one file or folder, or a list of them. mono: "first" channel
    (official) or "mean" of the channels. batch_size: files per ``codec.encode`` call. root: name
    outputs relative to this folder. overwrite: replace token files that exist; otherwise token files
    that the same call wrote before (an interrupted run) are kept and any other existing one is an
    ``OutputExistsError`` before any work.
    progress: bars over the batches and inside each; None shows them only when stderr is a terminal.
    """
    from codec.audio import check_long_enough, check_mono, load_audio, probe_audio, resampled_length
    from codec.token_file import TokenFile, save_tokens

    _check_codec(codec, "encode", "compress")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_mono(mono)
    plan = planned_outputs(paths, out_dir, "encode", overwrite, root, mono=mono, variant=codec.variant)
    _report_kept(plan, "token files")
    files = [plan.inputs[i][0] for i in plan.pending]
    targets = [plan.targets[i] for i in plan.pending]
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
                source=str(batch[i]), mono=mono,
            )
            save_tokens(targets[start + i], record)
    return targets


def _check_codec(codec: Any, method: str, function: str) -> None:
    """A ``TypeError`` when the first argument is not a codec (e.g. the paths given first)."""
    if not callable(getattr(codec, method, None)) or not hasattr(codec, "variant"):
        raise TypeError(f"{function}(codec, ...) takes the codec first (a SemantiCodec), got "
                        f"{type(codec).__name__} ({codec!r:.80}); call {function}(codec, paths, out_dir, ...).")


def _write_wav(path: Path, wave: torch.Tensor, sample_rate: int, stamp: dict[str, Any]) -> Path:
    import json

    import soundfile as sf

    from plumbing.io import atomic_write

    data = wave.float().clamp(-1, 1).cpu().numpy()

    def write(tmp: str) -> None:
        with sf.SoundFile(tmp, "w", sample_rate, 1, subtype="PCM_16", format="WAV") as f:
            f.comment = json.dumps(stamp, sort_keys=True)  # what resuming compares (codec.earlier_outputs)
            f.write(data)

    return atomic_write(path, write)


def _decoder_dtype(codec: Any) -> str | None:
    decoder = getattr(codec, "decoder", None)
    if not isinstance(decoder, torch.nn.Module):
        return None
    return str(next(decoder.parameters()).dtype).removeprefix("torch.")


def _skip_noise(codec: Any, records: list[Any], settings: DecodeSettings, generator: torch.Generator) -> None:
    """Draw (and drop) the sampler noise that decoding ``records`` would take from ``generator``, so the
    files after them get the draws of an uninterrupted run (the decoder draws window by window)."""
    from codec.sampling import num_noise_draws

    decoder = getattr(codec, "decoder", None)
    if decoder is None or not hasattr(decoder, "draw_noise"):
        return
    draws = num_noise_draws(settings.sampler, settings.steps, codec.config.diffusion_steps_train)
    for record in records:
        for _ in range(len(decoder.plan_windows([record.tokens.shape[0]]))):
            decoder.draw_noise(1, draws, generator, generator.device)


def decompress(
    codec: Any,
    token_files: Paths,
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

    token_files: one token file or folder, or a list of them. Every file must be a valid token file
    (``codec.token_file.load_tokens``) of ``codec.variant``, checked before anything is decoded.
    settings: sampler, steps, guidance and eta (default ``DecodeSettings()``, the official DDIM).
    batch_size: clips per ``codec.decode`` call; generator: seeds the sampler's noise (a rerun of an
    interrupted call gives the files of an uninterrupted one). Each wav records the token file and the
    settings in its comment field. overwrite: replace wavs that exist; otherwise wavs that the same call
    wrote before are kept and any other existing one is an ``OutputExistsError`` before any work.
    progress: bars over the batches and inside each (UNet steps, VAE + vocoder); None shows them
    only when stderr is a terminal.
    """
    from codec.earlier_outputs import decode_stamp
    from codec.token_file import load_tokens
    from plumbing.io import pad_stack
    from plumbing.progress import progress_bar, progress_enabled

    _check_codec(codec, "decode", "decompress")
    settings = settings or DecodeSettings()
    if not isinstance(settings, DecodeSettings):
        raise TypeError(f"settings must be a codec.sampling.DecodeSettings, got {type(settings).__name__}.")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = None if generator is None else generator.initial_seed()
    cfg_scale = settings.cfg_scale if settings.cfg_scale is not None else getattr(codec.config, "cfg_scale", None)
    stamp_of = dict(settings=settings, seed=seed, decoder_dtype=_decoder_dtype(codec), variant=codec.variant,
                    cfg_scale=cfg_scale)
    inputs = _with_root(find_inputs(token_files, _is_token_file, f"token files (*{SUFFIX})"), root)
    records = [load_tokens(f) for f, _ in inputs]
    for (path, _), record in zip(inputs, records):
        if record.codec_variant != codec.variant:
            raise VariantMismatchError(
                f"{str(path)!r} holds tokens of codec {record.codec_variant!r} ({record.token_rate} tokens/s) but the "
                f"codec is {codec.variant!r}; decode with the codec that made them."
            )
    plan = planned_outputs(token_files, out_dir, "decode", overwrite, root, **stamp_of)
    _report_kept(plan, "wav files")
    kept = set(plan.kept)
    # Consecutive kept files are skipped (their noise drawn and dropped), the others decoded in batches.
    steps: list[tuple[bool, list[int]]] = []
    for keep, group in groupby(range(len(records)), key=lambda i: i in kept):
        group = list(group)
        steps += [(True, group)] if keep else [(False, group[j : j + batch_size]) for j in range(0, len(group), batch_size)]
    todo = sum(not keep for keep, _ in steps)
    written: list[Path] = []
    with progress_bar(total=todo, desc="decode", unit="batch", progress=progress_enabled(progress) and todo > 1) as bar:
        for n, (keep, indices) in enumerate(steps):
            if keep:
                if generator is not None and any(not k for k, _ in steps[n + 1 :]):
                    _skip_noise(codec, [records[i] for i in indices], settings, generator)
                continue
            batch = [records[i] for i in indices]
            tokens, lengths = pad_stack([r.tokens for r in batch])
            decoded = codec.decode(
                tokens.to(codec.device), lengths.to(codec.device), steps=settings.steps, sampler=settings.sampler,
                cfg_scale=settings.cfg_scale, eta=settings.eta, generator=generator, batch_size=batch_size,
                progress=progress,
            )
            for i, wave in zip(indices, decoded.unbatch()):
                stamp = decode_stamp(inputs[i][0], **stamp_of)
                written.append(_write_wav(plan.targets[i], wave[: records[i].num_samples], decoded.sample_rate, stamp))
            bar.update()
    return written
