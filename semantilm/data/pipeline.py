"""Encode one shard of items: audio reading and resampling in ``DataLoader`` workers, the codec in
this process, batches sorted by length, rows back in input order.

``encode_shard`` returns the token rows and the failure records (``{"id", "reason"}`` and the item's
``origin`` fields) of a shard: every item is in exactly one of them. An item its source could not read
(its ``error``), a clip that cannot be decoded, is empty, holds NaN/Inf or is shorter than one codec
frame is a failure; with ``on_error="stop"`` the first one raises ``TokenizeError`` naming the input.
Samples beyond [-1, 1] in the audio as read are warned about, naming the input.
"""

from __future__ import annotations

import inspect
import math
from contextlib import nullcontext
from typing import Any

import torch

from codec.data import decode_audio_cell
from semantilm.data.input_warnings import codec_warnings_silenced, input_notes, warn_about_input
from semantilm.data.sources import RESERVED_COLUMNS, probe_seconds
from semantilm.data.tokenize_settings import DTYPE_NAMES, TokenizeSettings

__all__ = ["TokenizeError", "encode_shard", "min_samples", "ShardClips", "DTYPES"]

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SKIP_HINT = "on_error='skip' (--on-error skip) records such inputs in failures.jsonl and goes on"


class TokenizeError(ValueError):
    """An input that could not be tokenised, with ``--on-error stop``."""


def min_samples(codec: Any) -> int:
    """Fewest samples (at the codec's rate) a clip needs: one token frame, and one fbank window."""
    frame = math.ceil(codec.sample_rate / codec.frame_rate)
    window = getattr(getattr(codec, "config", None), "win_length", 0) or 0
    return max(frame, int(window), 1)


class ShardClips(torch.utils.data.Dataset):
    """Item i -> (i, mono waveform at ``rate`` or None, failure reason or None, warnings about the input);
    runs in the workers."""

    def __init__(self, items: list[dict[str, Any]], rate: int, least: int, mono: str = "first",
                 audio_column: str = "audio"):
        self.items, self.rate, self.least, self.mono, self.column = items, rate, least, mono, audio_column

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None, list[str]]:
        from codec.audio import resample

        item = self.items[i]
        audio = item["audio"]
        if item.get("error"):
            return i, None, item["error"], []
        if audio is None:
            return i, None, "unreadable: no audio", []
        if isinstance(audio, str):
            audio = {"path": audio, "bytes": None}
        try:
            wave, rate = decode_audio_cell(audio, None, self.column, self.mono)
        except (ValueError, TypeError, OSError, RuntimeError) as err:
            return i, None, f"unreadable: {err}", []
        if wave.numel() == 0:
            return i, None, "empty: no samples", []
        if not bool(torch.isfinite(wave).all()):
            return i, None, "non-finite: NaN or Inf samples", []
        notes = input_notes(wave, f"input {item.get('name') or repr(str(item['id']))}")
        wave = resample(wave.float(), int(rate), self.rate)
        if wave.numel() < self.least:
            return i, None, f"too short: {wave.numel()} samples at {self.rate} Hz, at least {self.least} needed", []
        return i, wave.contiguous(), None, notes


def collate(samples: list[tuple[int, torch.Tensor | None, str | None, list[str]]]) -> dict[str, Any]:
    from plumbing.io import pad_stack

    ok = [(i, w) for i, w, _, _ in samples if w is not None]
    batch: dict[str, Any] = {"index": [i for i, _ in ok], "failed": [(i, r) for i, w, r, _ in samples if w is None],
                             "notes": [n for *_, notes in samples for n in notes]}
    if ok:
        batch["waves"], batch["lengths"] = pad_stack([w for _, w in ok])
    return batch


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def _encode(codec: Any, waves: torch.Tensor, lengths: torch.Tensor, device: torch.device, dtype: torch.dtype,
            segment_batch: int) -> list[torch.Tensor]:
    """A padded batch -> one LongTensor[T_b, 2] per clip (on the CPU)."""
    waves = waves.to(device, non_blocking=True)
    params = inspect.signature(codec.encode).parameters
    kwargs = {"batch_size": segment_batch} if "batch_size" in params else {}
    if "progress" in params:  # the shard's bar counts the clips; no bar per batch
        kwargs["progress"] = False
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
    with autocast, codec_warnings_silenced():
        out = codec.encode(waves, int(codec.sample_rate), lengths, **kwargs)
    tokens, frames = out.tokens.cpu(), out.lengths.cpu()
    return [tokens[b, : int(frames[b])] for b in range(tokens.shape[0])]


def _encode_or_isolate(codec: Any, batch: dict[str, Any], ids: list[str], encoding: dict[str, Any],
                       stop: bool) -> tuple[dict[int, torch.Tensor], list[tuple[int, str]]]:
    """Encode a batch; when the codec fails on it, encode its clips one by one to find the bad ones
    (with ``stop``, the first clip it fails on alone raises ``TokenizeError`` naming that input)."""
    index = batch["index"]
    try:
        return dict(zip(index, _encode(codec, batch["waves"], batch["lengths"], **encoding), strict=True)), []
    except (ValueError, RuntimeError):
        pass  # one of the clips, or the batch as a whole (e.g. memory): each clip alone tells which
    done, failed = {}, []
    for i, wave, n in zip(index, batch["waves"], batch["lengths"], strict=True):
        try:
            done[i] = _encode(codec, wave[None, : int(n)], n[None], **encoding)[0]
        except (ValueError, RuntimeError) as err:
            if stop:
                raise TokenizeError(f"input {ids[i]} cannot be tokenised: codec error: {err}; {SKIP_HINT}") from err
            failed.append((i, f"codec error: {err}"))
    return done, failed


def encode_shard(codec: Any, items: list[dict[str, Any]], settings: TokenizeSettings, *,
                 progress: Any = None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Tokenise the ``items`` of one shard with ``settings`` (batch size, readers, device, dtype,
    on_error; see the module docstring).

    Returns (rows in item order, failure records in item order). ``progress``: a tqdm bar to update.
    """
    device, batch_size, stop = torch.device(settings.device), settings.batch_size, settings.on_error == "stop"
    ids = [str(item.get("name") or repr(str(item["id"]))) for item in items]  # in messages
    seconds_guess = [probe_seconds(item["audio"]) for item in items]  # unreadable headers first: fail early
    order = sorted(range(len(items)), key=lambda i: (seconds_guess[i] > 0, -seconds_guess[i], i))
    batches = [order[j : j + batch_size] for j in range(0, len(order), batch_size)]
    loader = torch.utils.data.DataLoader(
        ShardClips(items, int(codec.sample_rate), min_samples(codec)), batch_sampler=batches,
        num_workers=settings.readers, collate_fn=collate, pin_memory=device.type == "cuda",
        worker_init_fn=_one_thread if settings.readers > 0 else None,
    )
    encoding = {"device": device, "dtype": DTYPES[settings.dtype], "segment_batch": batch_size}
    tokens: dict[int, torch.Tensor] = {}
    reasons: dict[int, str] = {}
    seconds: dict[int, float] = {}
    for batch in loader:
        warn_about_input(batch["notes"])
        failed = list(batch["failed"])
        if failed and stop:
            i, reason = failed[0]
            raise TokenizeError(f"input {ids[i]} cannot be tokenised: {reason}; {SKIP_HINT}")
        if batch["index"]:
            done, more = _encode_or_isolate(codec, batch, ids, encoding, stop)
            tokens.update(done)
            failed += more
            for i, n in zip(batch["index"], batch["lengths"].tolist(), strict=True):
                seconds[i] = n / float(codec.sample_rate)
        reasons.update(failed)
        if progress is not None:
            progress.update(len(batch["index"]) + len(batch["failed"]))
            progress.hours = getattr(progress, "hours", 0.0) + sum(seconds.get(i, 0.0) for i in batch["index"]) / 3600
            progress.set_postfix(hours=f"{progress.hours:.3f}", refresh=False)
    rows = [_row(str(items[i]["id"]), tokens[i], seconds[i], items[i]["meta"]) for i in range(len(items)) if i in tokens]
    failures = [{**items[i].get("origin", {}), "id": str(items[i]["id"]),
                 "reason": reasons.get(i, "codec error: the codec returned no tokens for it")}
                for i in range(len(items)) if i not in tokens]
    return rows, failures


def _row(item_id: str, tokens: torch.Tensor, seconds: float, meta: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": item_id,
        "semantic_ids": tokens[:, 0].tolist(),
        "acoustic_ids": tokens[:, 1].tolist(),
        "num_frames": int(tokens.shape[0]),
        "duration": seconds,
    }
    for name, value in meta.items():
        row[f"source_{name}" if name in RESERVED_COLUMNS else name] = value
    return row
