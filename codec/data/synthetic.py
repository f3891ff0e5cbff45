"""A captioned synthetic sound set, made by the toolkit itself and reproducible from a seed.

Tones, chords, sweeps, noise bursts and rhythmic clicks, each with a caption that states
what it is (kind, pitch, rate). It needs no download, so it serves the offline demo, the
tiny codec's training and tests. Example ``i`` of a set depends only on (seed, i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

KINDS = ("tone", "chord", "sweep", "noise", "clicks")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# MIDI notes C3 (130.8 Hz) .. B5 (987.8 Hz): well inside what a 16 kHz codec reproduces.
NOTE_RANGE = (48, 84)
CHORDS = {"major": (0, 4, 7), "minor": (0, 3, 7)}


def note_frequency(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def note_name(midi: int) -> str:
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


@dataclass
class SyntheticSoundConfig:
    """What to generate. ``kinds`` picks the sound types, drawn uniformly per example."""

    num_examples: int = 64
    seconds: float = 2.0
    sample_rate: int = 16000
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    peak: float = 0.5  # peak amplitude of every example
    notes: tuple[int, int] = NOTE_RANGE  # MIDI range [lo, hi) for tones and chord roots
    # Tones only: a uniform random offset of up to +-detune_cents from the note, so that tone
    # frequencies cover the range continuously (vocoder / codec training); 0 keeps exact notes.
    detune_cents: float = 0.0
    # Tones only: snap the frequency to the nearest multiple of this many Hz (0: off). A HiFi-GAN
    # vocoder at hop H can only emit harmonics of sample_rate / H for a steady tone (see
    # docs/codec_training.md), so a vocoder trained on steady tones wants them on that grid.
    tone_grid_hz: float = 0.0
    # Draw each example's peak uniformly from (lo, hi) instead of ``peak``, so that a codec
    # trained on the set hears sounds at many levels (None: every example at ``peak``).
    peak_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"kinds={self.kinds!r} must be a non-empty subset of {KINDS}.")
        if self.num_examples < 1 or self.seconds <= 0 or self.sample_rate <= 0:
            raise ValueError("num_examples, seconds and sample_rate must be positive.")
        if self.tone_grid_hz < 0:
            raise ValueError(f"tone_grid_hz={self.tone_grid_hz!r} must be >= 0 (0: off).")
        if not 0 <= self.detune_cents <= 100:
            raise ValueError(f"detune_cents={self.detune_cents!r} must be between 0 and 100.")
        if self.peak_range is not None and not (0 < self.peak_range[0] <= self.peak_range[1] <= 1):
            raise ValueError(f"peak_range={self.peak_range!r} must be (lo, hi) with 0 < lo <= hi <= 1.")
        if not (0 < self.notes[0] < self.notes[1] <= 127):
            raise ValueError(f"notes={self.notes!r} must be a MIDI range (lo, hi) with 0 < lo < hi <= 127.")


@dataclass
class SyntheticSound:
    """audio: float32 [seconds * sample_rate]; caption: what it is; params: its numbers."""

    audio: np.ndarray
    sample_rate: int
    caption: str
    kind: str
    params: dict = field(default_factory=dict)


def _envelope(n: int, rate: int, fade: float = 0.02) -> np.ndarray:
    k = max(1, int(fade * rate))
    env = np.ones(n)
    ramp = np.linspace(0.0, 1.0, min(k, n // 2) + 1)[1:]
    env[: ramp.size] = ramp
    env[n - ramp.size :] = ramp[::-1]
    return env


def make_sound(index: int, config: SyntheticSoundConfig) -> SyntheticSound:
    """Example ``index`` of the set described by ``config`` (deterministic)."""
    rng = np.random.default_rng([config.seed, index])
    kind = config.kinds[int(rng.integers(len(config.kinds)))]
    rate = config.sample_rate
    n = int(round(config.seconds * rate))
    t = np.arange(n) / rate
    params: dict = {}
    if kind == "tone":
        midi = int(rng.integers(*config.notes))
        f = note_frequency(midi)
        if config.detune_cents:
            f *= 2 ** (rng.uniform(-config.detune_cents, config.detune_cents) / 1200)
        if config.tone_grid_hz:
            f = max(1, round(f / config.tone_grid_hz)) * config.tone_grid_hz
        y = np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
        params = {"frequency": f, "note": note_name(midi)}
        caption = f"a steady sine tone at {f:.0f} Hz ({note_name(midi)})"
    elif kind == "chord":
        root = int(rng.integers(*config.notes))
        quality = ("major", "minor")[int(rng.integers(2))]
        freqs = [note_frequency(root + step) for step in CHORDS[quality]]
        y = sum(np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi)) for f in freqs)
        params = {"frequency": freqs[0], "note": note_name(root), "quality": quality}
        caption = f"a {note_name(root)} {quality} chord of three sine tones"
    elif kind == "sweep":
        lo = note_frequency(int(rng.integers(config.notes[0], config.notes[0] + 12)))
        hi = note_frequency(int(rng.integers(config.notes[1] - 12, config.notes[1])))
        rising = bool(rng.integers(2))
        f0, f1 = (lo, hi) if rising else (hi, lo)
        inst = f0 * (f1 / f0) ** (t / config.seconds)
        y = np.sin(2 * math.pi * np.cumsum(inst) / rate)
        params = {"start_frequency": f0, "end_frequency": f1}
        caption = f"a {'rising' if rising else 'falling'} sweep from {f0:.0f} Hz to {f1:.0f} Hz"
    elif kind == "noise":
        bursts = int(rng.integers(1, 5))
        y = np.zeros(n)
        length = n // (2 * bursts)
        for b in range(bursts):
            start = b * 2 * length + int(rng.integers(0, max(1, length // 2)))
            stop = min(n, start + length)
            y[start:stop] = rng.standard_normal(stop - start) * _envelope(stop - start, rate, 0.005)
        params = {"bursts": bursts}
        caption = f"{bursts} short burst{'s' if bursts > 1 else ''} of white noise"
    else:  # clicks
        per_second = int(rng.integers(2, 9))
        y = np.zeros(n)
        click = np.hanning(max(8, rate // 400)) * np.sign(np.sin(np.linspace(0, 6 * math.pi, max(8, rate // 400))))
        for start in np.arange(0, n - click.size, rate / per_second).astype(int):
            y[start : start + click.size] += click
        params = {"rate": per_second}
        caption = f"rhythmic clicks, {per_second} per second"
    y = y * _envelope(n, rate)
    # drawn last, so that a set without peak_range keeps every other draw of its examples
    level = config.peak
    if config.peak_range is not None:
        level = params["peak"] = float(rng.uniform(*config.peak_range))
    peak = np.abs(y).max()
    y = (level * y / peak) if peak > 0 else y
    return SyntheticSound(y.astype(np.float32), rate, caption, kind, params)


def synthetic_sounds(config: SyntheticSoundConfig) -> list[SyntheticSound]:
    return [make_sound(i, config) for i in range(config.num_examples)]


def synthetic_dataset(config: SyntheticSoundConfig):
    """The set as a ``datasets.Dataset`` with columns audio {array, sampling_rate}, caption,
    kind and frequency (Hz of the tone / chord root / sweep start; NaN for noise and clicks)."""
    from datasets import Dataset

    def rows():
        for i in range(config.num_examples):
            s = make_sound(i, config)
            freq = s.params.get("frequency", s.params.get("start_frequency", float("nan")))
            yield {"audio": {"array": s.audio, "sampling_rate": s.sample_rate}, "caption": s.caption,
                   "kind": s.kind, "frequency": float(freq)}

    return Dataset.from_list(list(rows()))
