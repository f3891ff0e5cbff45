"""Tokenise a whole corpus into a token folder: what ``semantilm tokenize`` runs, on one process or many.

Each process (``rank`` of ``world_size``, e.g. from ``accelerate.PartialState``) encodes the input
shards ``k`` with ``k % world_size == rank`` that are not done yet, then helps with the shards still
missing (from the last one backwards) that no other process of the same run has started (each
process marks a shard when it starts it; marks older than this process are from a stopped run and
do not count); a shard's output is named by its index and written atomically,
so the result does not depend on which process made it nor on how many there were, and a run
killed at any moment resumes where it stopped. The process that sees every shard done merges the
failure records and writes the manifest (see :mod:`semantilm.data.token_dataset` for the layout).
What is read and how it is encoded: :class:`~semantilm.data.tokenize_settings.TokenizeSettings`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plumbing.config_file import ConfigError
from semantilm.data.tokenize_settings import TokenizeSettings

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["TokenisedCorpus", "TokenizeWarning", "tokenize_corpus", "summary_line"]

# Least time a process waits for a shard another process of the run started before encoding it
# itself (at least 3x its own slowest shard).
PEER_PATIENCE_SECONDS = 60.0


@dataclass
class TokenisedCorpus:
    """What ``tokenize_corpus`` did. ``manifest`` is None in a process that finished before the others."""

    out_dir: Path
    codec_variant: str
    manifest: dict[str, Any] | None
    seconds_encoded: float = 0.0  # audio this process encoded in this run
    wall_seconds: float = 0.0
    shards_written: list[int] = field(default_factory=list)
    shards_repaired: list[int] = field(default_factory=list)  # recorded as done, but their file was missing or damaged

    @property
    def num_frames(self) -> int:
        return int((self.manifest or {}).get("frames", 0))

    @property
    def dataset(self) -> Dataset:
        from semantilm.data.token_dataset import load_token_dataset

        return load_token_dataset(self.out_dir)


class TokenizeWarning(UserWarning):
    """Inputs that could not be tokenised (``on_error="skip"``): counted, and listed in ``failures.jsonl``."""


def _warn_about_failures(result: TokenisedCorpus) -> None:
    """A ``TokenizeWarning`` when the finished folder lists failures, with the first one as an example."""
    import warnings

    from semantilm.data.token_dataset import FAILURES

    m = result.manifest or {}
    if not m.get("failures"):
        return
    path = result.out_dir / FAILURES
    with path.open() as lines:
        first = json.loads(next(lines))
    warnings.warn(f"{m['failures']} of the {m.get('inputs')} inputs could not be tokenised and have no token row; "
                  f"{str(path)!r} lists them (e.g. {first['id']!r}: {first['reason']}).", TokenizeWarning, stacklevel=3)


def _caption_fn(caption_column: str | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rename(meta: dict[str, Any]) -> dict[str, Any]:
        if caption_column is None:
            return meta
        caption = meta.pop(caption_column, None)
        meta["caption"] = caption if isinstance(caption, str) else ""
        return meta

    return rename


def _carried_types(types: dict[str, Any], caption_column: str | None) -> dict[str, Any]:
    """The Arrow types of the carried columns under their output names."""
    import pyarrow as pa

    from semantilm.data.sources import RESERVED_COLUMNS

    types = dict(types)
    if caption_column is not None:
        types.pop(caption_column, None)
        types["caption"] = pa.string()
    return {f"source_{n}" if n in RESERVED_COLUMNS else n: t for n, t in types.items()}


def _check_caption_column(source: Any, caption_column: str | None) -> None:
    if caption_column is not None and source.columns is not None and caption_column not in source.columns:
        name = source.description.get("name") or source.description.get("path")
        raise ConfigError(f"caption_column {caption_column!r} is not a column of {name!r}; it has {source.columns}.")


def tokenize_corpus(
    source: Any,
    codec: Any | Callable[[], Any],
    out_dir: str | os.PathLike,
    *,
    settings: TokenizeSettings | None = None,
    rank: int = 0,
    world_size: int = 1,
    codec_source: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> TokenisedCorpus:
    """Tokenise ``source`` into the token folder ``out_dir`` (made, or resumed where an earlier run stopped).

    source: a folder of audio files, ``.tar`` shards, a ``datasets`` data set (a name, a folder, Parquet
        files, a ``Dataset`` or ``IterableDataset`` object) or ``"synthetic"``: see
        :mod:`semantilm.data.sources`.
    codec: the codec, or a function that loads it (called after the input checks, so a typo fails
        before a download). codec_source: how to load that codec again, recorded in the manifest.
    settings: what to read and how to encode (:class:`TokenizeSettings`; default: its defaults).
    rank, world_size: this process among the processes of the run (e.g. ``accelerate.PartialState``).
    progress: a bar per process (None: only on a terminal).
    A missing local input is a ``FileNotFoundError``; a token folder as input, a missing column, bad
    settings or an output folder made with another codec a ``ConfigError``; with ``on_error="stop"``
    an input that cannot be tokenised is a ``TokenizeError`` (a ValueError). With ``on_error="skip"``
    such inputs are lines of ``failures.jsonl``, and a ``TokenizeWarning`` counts them.
    """
    from semantilm.codec_api import check_codec, codec_description
    from semantilm.data.sources import open_source
    from semantilm.data.token_dataset import start_run

    settings = TokenizeSettings() if settings is None else settings
    if not isinstance(settings, TokenizeSettings):
        raise TypeError(f"settings must be a TokenizeSettings, got {type(settings).__name__}.")
    if not (isinstance(world_size, int) and isinstance(rank, int) and 0 <= rank < world_size):
        raise ConfigError(f"rank={rank!r} and world_size={world_size!r}: world_size must be a positive integer and "
                          "rank one of 0 .. world_size - 1.")
    src = open_source(source, settings)
    _check_caption_column(src, settings.caption_column)
    model = codec() if callable(codec) and not hasattr(codec, "encode") else codec
    check_codec(model, methods=("encode",))
    info = codec_description(model)
    if codec_source is not None:
        info["source"] = dict(codec_source)
    run_info = {"codec": json.loads(json.dumps(info)), "input": src.description, "shard_size": settings.shard_size,
                "audio_column": settings.audio_column, "caption_column": settings.caption_column}
    out = _output_folder(Path(out_dir))
    start_run(out, run_info)
    result = _run(src, model, out, run_info, settings, rank, world_size, progress)
    if rank == 0:
        _warn_about_failures(result)
    return result


def _output_folder(out: Path) -> Path:
    """``out`` made (with its parents) as a folder; a ``ConfigError`` naming it when a file is in the way."""
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        what = "--out" if blocking == out else f"--out {str(out)!r}: its parent"
        raise ConfigError(f"{what} {str(blocking)!r} is a file, not a folder; the token folder needs a folder "
                          "name (a new one, or the folder of an earlier run to resume it).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {str(out)!r} cannot be made: {err.strerror or err}.") from err
    return out


def _wait_for_others(src: Any, out: Path, encode: Callable[[int, list], None], patience: float) -> None:
    """Wait for the shards other processes of this run are encoding, so that every process returns
    with the folder complete; a shard still missing after ``patience`` seconds (its process may have
    died) is encoded here."""
    from semantilm.data.token_dataset import shard_done

    deadline = time.time() + patience
    missing = list(range(src.num_shards))
    while missing := [k for k in missing if not shard_done(out, k)]:
        if time.time() >= deadline:
            for k in reversed(missing):
                if not shard_done(out, k):
                    encode(k, src.shard(k))
            return
        time.sleep(0.2)


def _run(src: Any, model: Any, out: Path, run_info: dict[str, Any], settings: TokenizeSettings,
         rank: int, world_size: int, progress: bool | None) -> TokenisedCorpus:
    from plumbing.progress import progress_bar
    from semantilm.data.pipeline import encode_shard
    from semantilm.data.token_dataset import (
        busy_since,
        damaged_shards,
        finish_run,
        mark_busy,
        run_clock,
        shard_done,
        write_shard,
    )

    start = time.time()
    rename = _caption_fn(settings.caption_column)
    result = TokenisedCorpus(out, str(model.variant), None)
    types = _carried_types(src.types, run_info["caption_column"])
    bar = progress_bar(desc=f"tokenize {rank + 1}/{world_size}", unit="clip", progress=progress, leave=True,
                       position=rank, dynamic_ncols=True)
    bar.hours = 0.0

    stream = getattr(src, "stream", False)
    since = run_clock(out, rank)
    result.shards_repaired = damaged_shards(out)

    def open_shard(k: int) -> bool:  # not done, and no other process of this run is encoding it
        return not shard_done(out, k) and (stream or not busy_since(out, k, since))

    slowest = [0.0]  # seconds of this process's slowest shard

    def encode(k: int, items: list[dict[str, Any]]) -> None:
        mark_busy(out, k)
        began = time.time()
        for item in items:
            item["meta"] = rename(item["meta"])
        rows, failures = encode_shard(model, items, settings, progress=bar)
        summary = write_shard(out, k, rows, failures, types)
        result.seconds_encoded += summary["seconds"]
        result.shards_written.append(k)
        slowest[0] = max(slowest[0], time.time() - began)

    for k, items in src.iter_shards(lambda k: k % world_size == rank and open_shard(k)):
        encode(k, items)
    if src.num_shards is not None and not stream:
        for k in reversed(range(src.num_shards)):  # help with the shards still missing
            if open_shard(k):
                encode(k, src.shard(k))
        if world_size > 1:
            _wait_for_others(src, out, encode, max(PEER_PATIENCE_SECONDS, 3 * slowest[0]))
    extra = {"columns": src.columns, "not_in_metadata": len(getattr(src, "not_in_metadata", []))}
    result.manifest = finish_run(out, run_info, src.num_shards, extra)
    while result.manifest is None and world_size > 1 and stream:
        time.sleep(1.0)  # a stream is read once per process: wait for the others' shards
        result.manifest = finish_run(out, run_info, src.num_shards, extra)
    bar.close()
    result.wall_seconds = time.time() - start
    return result


def summary_line(result: TokenisedCorpus) -> str:
    """rows + failures = inputs, hours, repaired shards, wall time and hours of audio per hour (of this
    run) in one line."""
    m = result.manifest or {}
    speed = result.seconds_encoded / result.wall_seconds if result.wall_seconds > 0 else 0.0
    rows, failures = m.get("rows", 0), m.get("failures", 0)
    line = (f"wrote {rows} token rows, {failures} failures (see {result.out_dir / 'failures.jsonl'}), "
            f"{m.get('inputs', rows + failures)} audio inputs ({m.get('hours', 0.0):.4f} h of audio, "
            f"{m.get('frames', 0)} frames, {result.codec_variant}) to {result.out_dir}")
    if m.get("not_in_metadata"):
        line += f"; inputs in no metadata file: {m['not_in_metadata']} (their metadata columns are empty)"
    if result.shards_repaired:
        line += f"; encoded again the missing or damaged shards {result.shards_repaired}"
    return line + (f"; wall time {result.wall_seconds:.1f} s; {speed:.1f} hours of audio per hour in this process")
