"""Does a codec keep what matters on synthetic sounds? Pitch and mel distance of a round trip.

The checks of a trained tiny codec (issue: "on held-out synthetic tones the dominant frequency
of the decoded audio is within 3 % of the input's for at least 80 %; its mel distance is clearly
better than decoding shuffled tokens"):

* tones at frequencies off the training grid (quarter tones between the synthetic set's notes,
  so no tone was a training example), or at given frequencies (a HiFi-GAN vocoder renders a
  steady tone only at multiples of its frame rate: docs/codec_training.md), random phase, 20 ms
  fades;
* ``encode`` -> ``decode`` (seeded); the dominant frequency of the middle of each decoded clip
  against the tone's (:func:`codec.metrics.dominant_frequency`);
* mel distance (:func:`codec.metrics.mel_distance`) of the round trip against the input, and of
  the same tokens shuffled (frames permuted across all clips), which keeps the token statistics
  but breaks the link to each input: a codec that encodes something beats it clearly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["ToneRoundTrip", "held_out_tones", "pitch_over_draws", "tone_round_trip"]


@dataclass
class ToneRoundTrip:
    """pitch_accuracy: fraction within ``tolerance``; mel distances (lower is better) of the round
    trip and of shuffled tokens; per tone: asked and measured frequency."""

    pitch_accuracy: float
    mel_distance: float
    shuffled_mel_distance: float
    tolerance: float
    tones: list[dict[str, float]] = field(default_factory=list)


def held_out_tones(count: int, sample_rate: int = 16000, seconds: float = 1.0, seed: int = 1234,
                   midi_range: tuple[float, float] = (48.5, 83.5), frequencies: list[float] | None = None,
                   peak: float = 0.5) -> tuple[torch.Tensor, np.ndarray]:
    """(waves FloatTensor[count, samples], frequencies in Hz): sine tones, peak ``peak``, random
    phase. Default frequencies: quarter tones between the synthetic set's notes (MIDI 48.5 .. 83.5
    = 135 - 1017 Hz), so none is a training note; or ``frequencies`` (then ``count`` is ignored)."""
    if (frequencies is None and count < 1) or seconds <= 0:
        raise ValueError(f"count must be >= 1 and seconds > 0, got {count} and {seconds}.")
    rng = np.random.default_rng(seed)
    if frequencies is None:
        freqs = 440.0 * 2 ** ((np.linspace(*midi_range, count) - 69) / 12)
    else:
        freqs = np.asarray(frequencies, dtype=np.float64)
        if freqs.ndim != 1 or not len(freqs) or (freqs <= 0).any() or (freqs >= sample_rate / 2).any():
            raise ValueError(f"frequencies must be a non-empty list of Hz in (0, {sample_rate / 2}), got {frequencies!r}.")
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    waves = np.stack([peak * fade * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi)) for f in freqs])
    return torch.tensor(waves, dtype=torch.float32), freqs


def tone_round_trip(codec: Any, count: int = 20, seconds: float = 1.0, tolerance: float = 0.03, steps: int = 25,
                    sampler: str = "dpmsolver++", seed: int = 0, frequencies: list[float] | None = None,
                    peak: float = 0.5) -> ToneRoundTrip:
    """Encode and decode held-out tones (``count`` quarter tones, or ``frequencies``) with ``codec``;
    see the module docstring."""
    from codec.metrics import mel_distance

    waves, freqs = held_out_tones(count, codec.sample_rate, seconds, frequencies=frequencies, peak=peak)
    enc = codec.encode(list(waves), codec.sample_rate)
    kwargs = {"steps": steps, "sampler": sampler}
    real = codec.decode(enc.tokens, enc.lengths, generator=torch.Generator().manual_seed(seed), **kwargs)
    order = torch.randperm(enc.tokens.shape[0] * enc.tokens.shape[1], generator=torch.Generator().manual_seed(seed))
    shuffled_tokens = enc.tokens.reshape(-1, 2)[order].reshape(enc.tokens.shape)
    shuffled = codec.decode(shuffled_tokens, enc.lengths, generator=torch.Generator().manual_seed(seed), **kwargs)

    n = waves.shape[1]

    def clip(audio: torch.Tensor) -> torch.Tensor:
        out = audio[:, :n]
        return torch.nn.functional.pad(out, (0, n - out.shape[1]))

    dist = float(mel_distance(waves, clip(real.audio)).mean())
    dist_shuffled = float(mel_distance(waves, clip(shuffled.audio)).mean())
    rows = _pitch_rows(real.audio, freqs, n, codec.sample_rate, tolerance)
    return ToneRoundTrip(sum(r["ok"] for r in rows) / len(freqs), dist, dist_shuffled, tolerance, rows)


def pitch_over_draws(codec: Any, frequencies: list[float], phase_seeds: tuple[int, ...] = (1,),
                     peaks: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6), noise_seeds: tuple[int, ...] = (0, 1, 2),
                     seconds: float = 1.0, tolerance: float = 0.03, steps: int = 25,
                     sampler: str = "dpmsolver++") -> dict[float, tuple[int, int]]:
    """{frequency: (decodes within ``tolerance``, decodes)} over every phase draw x peak x decode
    noise seed: one draw of a few tones moves by a whole tone's share, this pools many. The default
    varies the level and the decode noise, not the phase: a steady tone's tokens hardly depend on
    its phase (both encoders read magnitude spectra), so phase draws would repeat one sequence."""
    if not (phase_seeds and peaks and noise_seeds):
        raise ValueError("phase_seeds, peaks and noise_seeds must each hold at least one value.")
    counts = {float(f): [0, 0] for f in frequencies}
    for phase_seed in phase_seeds:
        for peak in peaks:
            waves, freqs = held_out_tones(0, codec.sample_rate, seconds, seed=phase_seed, frequencies=frequencies,
                                          peak=peak)
            enc = codec.encode(list(waves), codec.sample_rate)
            for noise_seed in noise_seeds:
                out = codec.decode(enc.tokens, enc.lengths, steps=steps, sampler=sampler,
                                   generator=torch.Generator().manual_seed(noise_seed))
                for row in _pitch_rows(out.audio, freqs, waves.shape[1], codec.sample_rate, tolerance):
                    counts[row["frequency"]][0] += row["ok"]
                    counts[row["frequency"]][1] += 1
    return {f: (ok, n) for f, (ok, n) in counts.items()}


def _pitch_rows(audio: torch.Tensor, freqs: np.ndarray, n: int, sample_rate: int,
                tolerance: float) -> list[dict[str, Any]]:
    """Per clip: asked and measured (dominant, over the middle half of ``n`` samples) frequency."""
    from codec.metrics import dominant_frequency

    rows = []
    for i, f in enumerate(freqs):
        measured = dominant_frequency(audio[i, n // 4: 3 * n // 4], sample_rate)
        rows.append({"frequency": float(f), "measured": float(measured), "ok": bool(abs(measured - f) <= tolerance * f)})
    return rows
