"""Tokenise a whole corpus into a token folder: what ``semantilm tokenize`` runs, on one process or many.

Each process (``rank`` of ``world_size``, e.g. from ``accelerate.PartialState``) encodes the input
shards ``k`` with ``k % world_size == rank`` that are not done yet, then helps with the shards still
missing (from the last one backwards) that no other process of the same run has started (each
process marks a shard when it starts it; marks older than this process are from a stopped run and
do not count); a shard's output is named by its index and written atomically,
so the result does not depend on which process made it nor on how many there were, and a run
killed at any moment resumes where it stopped. The process that sees every shard done merges the
failure records and writes the manifest (see :mod:`semantilm.data.token_dataset` for the layout).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codec.config_file import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from codec.data.synthetic import SyntheticSoundConfig

__all__ = ["TokenisedCorpus", "default_num_workers", "tokenize_corpus"]

ON_ERROR = ("skip", "stop")
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


def default_num_workers(device: str) -> int:
    """Reader processes by default: none on the CPU, 2 beside an accelerator.

    On the CPU the encoder's threads already use every core; reader processes there only take
    turns with them (tiny codec on 2 cores: 19.3 s in-process with none, 25.3 s with 2). Beside a
    GPU they read and resample while it encodes."""
    return 0 if str(device).split(":")[0] == "cpu" else 2


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


def _check(source: Any, caption_column: str | None, on_error: str, dtype: str, device: str) -> None:
    from semantilm.data.pipeline import DTYPES

    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error={on_error!r} must be one of {ON_ERROR}.")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype={dtype!r} must be one of {sorted(DTYPES)}.")
    if dtype != "float32" and not str(device).startswith("cuda"):
        raise ConfigError(f"--dtype {dtype} needs a CUDA device (the device is {device}); "
                          "on the CPU the codec encodes in float32.")
    if caption_column is not None and source.columns is not None and caption_column not in source.columns:
        name = source.description.get("name") or source.description.get("path")
        raise ConfigError(f"caption_column {caption_column!r} is not a column of {name!r}; it has {source.columns}.")


def tokenize_corpus(
    source: Any,
    codec: Any | Callable[[], Any],
    out_dir: str | os.PathLike,
    *,
    split: str = "train",
    audio_column: str = "audio",
    caption_column: str | None = None,
    max_examples: int | None = None,
    synthetic: SyntheticSoundConfig | None = None,
    batch_size: int = 16,
    shard_size: int = 512,
    num_workers: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    on_error: str = "skip",
    streaming: bool = False,
    rank: int = 0,
    world_size: int = 1,
    codec_source: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> TokenisedCorpus:
    """Tokenise ``source`` (see ``semantilm.data.sources.open_source``) into the token folder ``out_dir``.

    codec: the codec, or a function that loads it (called after the input checks, so a typo fails
        before a download). codec_source: how to load that codec again, recorded in the manifest.
    num_workers: DataLoader processes reading audio; None: :func:`default_num_workers` for ``device``.
    A missing local input is a ``FileNotFoundError``; a token folder as input, a missing column, bad
    settings or an output folder made with another codec a ``ConfigError``; with ``on_error="stop"``
    an input that cannot be tokenised is a ``TokenizeError`` (a ValueError).
    """
    from semantilm.codec_api import check_codec, codec_description
    from semantilm.data.sources import open_source
    from semantilm.data.token_dataset import start_run

    if num_workers is None:
        num_workers = default_num_workers(device)
    if batch_size <= 0 or num_workers < 0:
        raise ConfigError(f"batch_size must be positive and num_workers >= 0, got {batch_size} and {num_workers}.")
    src = open_source(source, split=split, audio_column=audio_column, shard_size=shard_size,
                      max_examples=max_examples, synthetic=synthetic, streaming=streaming)
    _check(src, caption_column, on_error, dtype, device)
    model = codec() if callable(codec) and not hasattr(codec, "encode") else codec
    check_codec(model, methods=("encode",))
    info = codec_description(model)
    if codec_source is not None:
        info["source"] = dict(codec_source)
    run_info = {"codec": json.loads(json.dumps(info)), "input": src.description, "shard_size": shard_size, "audio_column": audio_column,
                "caption_column": caption_column}
    out = _output_folder(Path(out_dir))
    start_run(out, run_info)
    settings = {"batch_size": batch_size, "num_workers": num_workers, "device": device, "on_error": on_error,
                "dtype": dtype}
    return _run(src, model, out, run_info, settings, _caption_fn(caption_column), rank, world_size, progress)


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


def _run(src: Any, model: Any, out: Path, run_info: dict[str, Any], settings: dict[str, Any],
         rename: Callable, rank: int, world_size: int, progress: bool | None) -> TokenisedCorpus:
    from codec.progress import progress_bar
    from semantilm.data.pipeline import DTYPES, encode_shard
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
        rows, failures = encode_shard(
            model, items, batch_size=settings["batch_size"], num_workers=settings["num_workers"],
            device=settings["device"], dtype=DTYPES[settings["dtype"]], on_error=settings["on_error"], progress=bar,
        )
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
