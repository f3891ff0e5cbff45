"""Which outputs of ``compress`` / ``decompress`` an earlier run of the same work finished already.

Rerunning an interrupted ``semantilm encode`` / ``decode`` (the same command) continues it: an output
that exists and was written from the same input with the same settings, after the input last changed,
is kept and not computed again. Any other existing output is refused (``OutputExistsError``, naming the
file and why it does not match) unless ``overwrite``. Every file is written atomically, so an existing
output is always complete.

Token files carry what they were made from (``TokenFile.source``, ``codec_variant``, ``mono`` and the
length and rate of the audio); wavs carry it in their comment field (:func:`decode_stamp`), a JSON object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from plumbing.io import OutputExistsError

__all__ = ["encoded_from", "decoded_from", "decode_stamp", "read_stamp", "split_outputs", "DECODE_STAMP"]

DECODE_STAMP = "semantilm decode"  # ``written_by`` of the JSON object in a decoded wav's comment


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _older(output: Path, source: Path) -> bool:
    """True when ``source`` changed after ``output`` was written."""
    return output.stat().st_mtime_ns < source.stat().st_mtime_ns


def encoded_from(target: Path, source: Path, *, mono: str, variant: str | None = None) -> str | None:
    """None when the token file ``target`` was encoded from the audio file ``source`` as it is now (same
    file, length, rate, channel rule and, when given, codec ``variant``); else why not, in a few words."""
    import soundfile as sf

    from codec.audio import resampled_length
    from codec.token_file import SAMPLE_RATE, load_tokens

    try:
        record = load_tokens(target)
    except (ValueError, OSError) as err:
        return f"it is not a token file this codec can read ({err})"
    if not record.source or not _same_file(record.source, source):
        return f"it was encoded from {record.source or 'an unrecorded file'!r}, not {str(source)!r}"
    if variant is not None and record.codec_variant != variant:
        return f"it holds tokens of codec {record.codec_variant!r}, not {variant!r}"
    try:
        info = sf.info(str(source))
    except Exception:  # noqa: BLE001 - the run's own checks name an unreadable source
        return f"{str(source)!r} cannot be read"
    if record.source_sample_rate != info.samplerate or record.num_samples != resampled_length(
        info.frames, info.samplerate, SAMPLE_RATE
    ):
        return f"it holds {record.num_samples} samples at {record.source_sample_rate} Hz, the audio file is another length now"
    if info.channels > 1 and record.mono != mono:
        return f"its channels were mixed with mono={record.mono or 'unrecorded'!r}, this run uses mono={mono!r}"
    if _older(target, source):
        return f"{str(source)!r} changed after it was encoded"
    return None


def decode_stamp(token_file: Path, settings: Any, *, seed: int | None, decoder_dtype: str | None,
                 variant: str | None = None, cfg_scale: float | None = None) -> dict[str, Any]:
    """What a decoded wav records about how it was made (its comment field); None values are unknown
    (before the codec loads) and match anything in :func:`decoded_from`."""
    return {
        "written_by": DECODE_STAMP, "tokens": str(token_file), "variant": variant, "sampler": settings.sampler,
        "steps": settings.steps, "cfg_scale": cfg_scale if cfg_scale is not None else settings.cfg_scale,
        "eta": settings.eta, "seed": seed, "decoder_dtype": decoder_dtype,
    }


def read_stamp(wav: Path) -> dict[str, Any] | None:
    """The :func:`decode_stamp` of a wav, or None when it has none (or cannot be read)."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(wav)) as f:
            stamp = json.loads(f.comment or "null")
    except Exception:  # noqa: BLE001 - not a readable wav, or a comment of someone else
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("written_by") == DECODE_STAMP else None


def decoded_from(target: Path, token_file: Path, num_samples: int, expected: dict[str, Any]) -> str | None:
    """None when the wav ``target`` was decoded from ``token_file`` (as it is now) with the settings of
    ``expected`` (a :func:`decode_stamp`; its None values are not compared); else why not."""
    import soundfile as sf

    from codec.token_file import SAMPLE_RATE

    stamp = read_stamp(target)
    if stamp is None:
        return "it is not a wav written by semantilm decode"
    if not _same_file(stamp.get("tokens", ""), token_file):
        return f"it was decoded from {stamp.get('tokens')!r}, not {str(token_file)!r}"
    differ = [f"{k}={stamp.get(k)!r} (this run: {v!r})" for k, v in expected.items()
              if k not in ("tokens", "written_by") and v is not None and stamp.get(k) != v]
    if differ:
        return "it was decoded with " + ", ".join(differ)
    info = sf.info(str(target))
    if info.samplerate != SAMPLE_RATE or info.frames != num_samples:
        return f"it holds {info.frames} samples at {info.samplerate} Hz, the token file decodes to {num_samples}"
    if _older(target, token_file):
        return f"{str(token_file)!r} changed after it was decoded"
    return None


def split_outputs(targets: Sequence[Path], why_not: Callable[[int], str | None], overwrite: bool) -> list[int]:
    """The indices of ``targets`` an earlier run finished (kept); an ``OutputExistsError`` naming the first
    existing target that does not match (``why_not(i)`` says why) unless ``overwrite`` (then none is kept)."""
    if overwrite:
        return []
    kept, stale = [], []
    for i, target in enumerate(targets):
        if target.exists():
            reason = why_not(i) if target.is_file() else "it is a folder"
            (stale if reason else kept).append((i, reason))
    if stale:
        i, reason = stale[0]
        raise OutputExistsError(
            f"{len(stale)} of the {len(targets)} output files already exist and are not this run's own earlier "
            f"output (first: {str(targets[i])!r}: {reason}); nothing was written. Pass overwrite=True (--overwrite "
            "on the command line) to replace them, or write to another folder. (Outputs that an interrupted run "
            "of the same command wrote are kept and not written again.)"
        )
    return [i for i, _ in kept]
