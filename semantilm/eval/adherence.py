"""Prompt adherence for the synthetic text-to-audio task: does the sound match its caption?

The synthetic captions (:mod:`codec.data.synthetic`) name a kind and, for tones, chords and
sweeps, a pitch. A generated clip adheres in pitch when the frequency it is measured to have
lies within ``tolerance`` (3 % by default, about half a semitone) of the caption's:

* tone: the dominant frequency (:func:`codec.eval.metrics.dominant_frequency`);
* chord: the lowest strong spectral peak, compared with the root note;
* sweep: start and end frequencies, from a straight line fitted to log-frequency over time
  (the synthetic sweeps are exponential) through the dominant frequency of short frames.

Its kind is classified from simple signal statistics (see :func:`classify_kind`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from codec.data import NOTE_NAMES, note_frequency

__all__ = ["parse_caption", "classify_kind", "prompt_adherence", "sweep_endpoints"]

_HZ = re.compile(r"(\d+(?:\.\d+)?)\s*Hz")
_NOTE = re.compile(r"\b([A-G]#?)(-?\d)\b")
# The most specific word first: a chord caption says "three sine tones".
_KIND_ORDER = ("chord", "sweep", "clicks", "noise", "tone")
_FRAME_SECONDS = 0.064


def parse_caption(caption: str) -> dict[str, Any]:
    """What a synthetic caption asks for: ``{"kind", "frequency", "start_frequency"}``.

    frequency: Hz of a tone, a chord's root note, or the frequency a sweep ends on (its
    ``start_frequency`` too); None for noise, clicks and captions without a pitch. ``kind`` is
    None for a caption that names none of the synthetic kinds (tone, chord, sweep, noise, clicks).
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a string, got {type(caption).__name__}.")
    text = caption.lower()
    kind = next((k for k in _KIND_ORDER if re.search(rf"\b{k}", text)), None)
    out: dict[str, Any] = {"kind": kind, "frequency": None, "start_frequency": None}
    hz = [float(v) for v in _HZ.findall(caption)]
    if kind == "tone" and hz:
        out["frequency"] = hz[0]
    elif kind == "sweep" and len(hz) >= 2:
        out["start_frequency"], out["frequency"] = hz[0], hz[-1]
    elif kind == "chord" and (note := _NOTE.search(caption)):
        name, octave = note.groups()
        out["frequency"] = note_frequency(NOTE_NAMES.index(name) + 12 * (int(octave) + 1))
    return out


def sweep_endpoints(wave: Any, sample_rate: int) -> tuple[float, float]:
    """(start Hz, end Hz) of a clip read as an exponential sweep: a line fitted to log2 of the
    dominant frequency of 64 ms frames (the first and last two frames, where fades sit, left out)."""
    from codec.eval import dominant_frequency

    x = np.asarray(wave, dtype=np.float64).reshape(-1)
    size = int(_FRAME_SECONDS * sample_rate)
    starts = np.arange(0, x.size - size + 1, size // 2)[2:-2]
    if starts.size < 2:
        raise ValueError(f"a clip of {x.size} samples is too short to follow a sweep; it needs at least {3 * size}.")
    times, pitches = [], []
    for s in starts:
        f = dominant_frequency(x[s : s + size], sample_rate)
        if math.isfinite(f):
            times.append((s + size / 2) / sample_rate)
            pitches.append(math.log2(f))
    if len(times) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(times, pitches, 1)
    return float(2**intercept), float(2 ** (intercept + slope * x.size / sample_rate))


def classify_kind(wave: Any, sample_rate: int) -> str:
    """Guess which synthetic kind (tone, chord, sweep, noise, clicks) a clip is, from its 5 ms
    loudness envelope and its spectrum.

    Clicks are loud in under a quarter of the envelope frames; otherwise a flat spectrum
    (spectral flatness > 0.01) means noise. Pitched sounds: a sweep moves more than two
    semitones from its start to its end, a chord has two or more strong spectral peaks, a
    tone one.
    """
    from codec.eval import spectral_peaks

    x = np.asarray(wave, dtype=np.float64).reshape(-1)
    x = x - x.mean()
    hop = max(1, sample_rate // 200)
    if x.size < 4 * hop or not np.any(x):
        return "noise"
    envelope = np.sqrt(np.add.reduceat(x**2, np.arange(0, x.size, hop)) / hop)
    if float(np.mean(envelope > 0.1 * envelope.max())) < 0.25:
        return "clicks"
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2 + 1e-20
    if float(np.exp(np.mean(np.log(power))) / np.mean(power)) > 0.01:
        return "noise"
    if x.size >= 4 * int(_FRAME_SECONDS * sample_rate):
        start, end = sweep_endpoints(x, sample_rate)
        if math.isfinite(start) and abs(math.log2(end / start)) > 1 / 6:
            return "sweep"
    return "chord" if len(spectral_peaks(x, sample_rate)) >= 2 else "tone"


def prompt_adherence(
    captions: Sequence[str], waveforms: Sequence[Any], sample_rate: int, tolerance: float = 0.03
) -> dict[str, Any]:
    """Score generated clips against their synthetic captions.

    captions / waveforms: one caption and one 1-D clip (array or tensor) per generated sound.
    Returns a dict: ``pitch_accuracy`` (fraction of pitched captions whose clip is within
    ``tolerance`` of the named frequency; None when no caption names one), ``kind_accuracy``
    (fraction classified as the captioned kind), the counts, and ``clips``: per clip the
    expected and measured kind and frequency.
    """
    if len(captions) != len(waveforms):
        raise ValueError(f"got {len(captions)} captions but {len(waveforms)} waveforms; pass one per clip.")
    if not captions:
        raise ValueError("captions is empty; pass at least one generated clip.")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in (0, 1), got {tolerance!r}.")
    clips = []
    for caption, wave in zip(captions, waveforms):
        want = parse_caption(caption)
        x = np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave, dtype=np.float64).reshape(-1)
        row: dict[str, Any] = {"caption": caption, **want}
        row["measured_kind"] = classify_kind(x, sample_rate) if want["kind"] else None
        if want["frequency"] is not None:
            row.update(_measure_pitch(want, x, sample_rate))
            row["pitch_ok"] = all(
                abs(row[f"measured_{key}"] - want[key]) <= tolerance * want[key]
                for key in ("frequency", "start_frequency") if want[key] is not None
            )
        clips.append(row)
    pitched = [c for c in clips if "pitch_ok" in c]
    kinded = [c for c in clips if c["kind"] is not None]
    return {
        "pitch_accuracy": sum(c["pitch_ok"] for c in pitched) / len(pitched) if pitched else None,
        "kind_accuracy": sum(c["kind"] == c["measured_kind"] for c in kinded) / len(kinded) if kinded else None,
        "num_clips": len(clips),
        "num_pitched": len(pitched),
        "tolerance": tolerance,
        "clips": clips,
    }


def _measure_pitch(want: dict[str, Any], x: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The measured counterparts of the caption's frequencies (NaN when they cannot be measured)."""
    from codec.eval import dominant_frequency, spectral_peaks

    if x.size < 4 or not np.any(x):
        return {"measured_frequency": float("nan"), "measured_start_frequency": float("nan")}
    if want["kind"] == "sweep":
        try:
            start, end = sweep_endpoints(x, sample_rate)
        except ValueError:
            start = end = float("nan")
        return {"measured_frequency": end, "measured_start_frequency": start}
    if want["kind"] == "chord":
        peaks = spectral_peaks(x, sample_rate)
        return {"measured_frequency": peaks[0][0] if peaks else float("nan")}
    return {"measured_frequency": dominant_frequency(x, sample_rate)}
