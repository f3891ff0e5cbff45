"""Does a codec keep what matters on synthetic sounds? Pitch and mel distance of a round trip.

The checks of a trained tiny codec (the share of held-out tones whose decoded dominant frequency
is within a tolerance of the input's, and the mel distance of the round trip against that of
shuffled tokens):

* tones at frequencies off the training grid (quarter tones between the synthetic set's notes,
  so no tone was a training example), or at given frequencies (a HiFi-GAN vocoder renders a
  steady tone only at multiples of its frame rate: docs/codec_training.md), random phase, 20 ms
  fades;
* ``encode`` -> ``decode`` (seeded, with :data:`TONE_SETTINGS` unless told otherwise); the dominant frequency of the middle of each decoded clip
  against the tone's (:func:`codec.eval.metrics.dominant_frequency`);
* mel distance (:func:`codec.eval.metrics.mel_distance`) of the round trip against the input, and of
  the same tokens shuffled (frames permuted across all clips), which keeps the token statistics
  but breaks the link to each input: a codec that encodes something beats it clearly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from codec.sampling import DecodeSettings

__all__ = [
    "TONE_SETTINGS",
    "MelPeakError",
    "ToneRoundTrip",
    "decoded_mel_peak_error",
    "held_out_tones",
    "mel_peak_position",
    "pitch_over_draws",
    "token_pitch_identification",
    "tone_round_trip",
]


# How the checks decode by default: DPM-Solver++ in 25 steps (deterministic given x_T).
TONE_SETTINGS = DecodeSettings(sampler="dpmsolver++", steps=25)


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


def tone_round_trip(codec: Any, count: int = 20, seconds: float = 1.0, tolerance: float = 0.03,
                    settings: DecodeSettings = TONE_SETTINGS, seed: int = 0, frequencies: list[float] | None = None,
                    peak: float = 0.5) -> ToneRoundTrip:
    """Encode and decode held-out tones (``count`` quarter tones, or ``frequencies``) with ``codec``;
    see the module docstring."""
    from codec.eval.metrics import mel_distance

    waves, freqs = held_out_tones(count, codec.sample_rate, seconds, frequencies=frequencies, peak=peak)
    enc = codec.encode(list(waves), codec.sample_rate)
    real = codec.decode(enc.tokens, enc.lengths, settings, generator=torch.Generator().manual_seed(seed))
    order = torch.randperm(enc.tokens.shape[0] * enc.tokens.shape[1], generator=torch.Generator().manual_seed(seed))
    shuffled_tokens = enc.tokens.reshape(-1, 2)[order].reshape(enc.tokens.shape)
    shuffled = codec.decode(shuffled_tokens, enc.lengths, settings, generator=torch.Generator().manual_seed(seed))

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
                     seconds: float = 1.0, tolerance: float = 0.03,
                     settings: DecodeSettings = TONE_SETTINGS) -> dict[float, tuple[int, int]]:
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
                out = codec.decode(enc.tokens, enc.lengths, settings,
                                   generator=torch.Generator().manual_seed(noise_seed))
                for row in _pitch_rows(out.audio, freqs, waves.shape[1], codec.sample_rate, tolerance):
                    counts[row["frequency"]][0] += row["ok"]
                    counts[row["frequency"]][1] += 1
    return {f: (ok, n) for f, (ok, n) in counts.items()}


def _pitch_rows(audio: torch.Tensor, freqs: np.ndarray, n: int, sample_rate: int,
                tolerance: float) -> list[dict[str, Any]]:
    """Per clip: asked and measured (dominant, over the middle half of ``n`` samples) frequency."""
    from codec.eval.metrics import dominant_frequency

    rows = []
    for i, f in enumerate(freqs):
        measured = dominant_frequency(audio[i, n // 4: 3 * n // 4], sample_rate)
        rows.append({"frequency": float(f), "measured": float(measured), "ok": bool(abs(measured - f) <= tolerance * f)})
    return rows


# ----- where a pitch error comes from: the tokens, or the decoder reading them ----------------


@dataclass
class MelPeakError:
    """Per tone (Hz): the decoded mel's peak minus the input's in mel bins, averaged over levels and
    noise draws (``bias``: what the decoder makes of the tokens) and its standard deviation over
    them (``spread``: what the draws add); ``mean_abs``: the mean |error| over every decode."""

    frequencies: list[float]
    bias: list[float]
    spread: list[float]
    mean_abs: float


def mel_peak_position(spectrum: torch.Tensor) -> torch.Tensor:
    """Fractional index of the highest bin of each row of ``spectrum`` [..., bins] (a parabola
    through it and its two neighbours), so that a peak between two mel bins is located."""
    if spectrum.shape[-1] < 3:
        raise ValueError(f"need at least 3 bins to place a peak, got {spectrum.shape[-1]}.")
    k = spectrum.argmax(-1).clamp(1, spectrum.shape[-1] - 2)
    a, b, c = (spectrum.gather(-1, (k + o).unsqueeze(-1)).squeeze(-1) for o in (-1, 0, 1))
    curvature = (a - 2 * b + c).clamp(max=-1e-6)
    return k + (0.5 * (a - c) / curvature).clamp(-1.0, 1.0)


def decoded_mel_peak_error(codec: Any, frequencies: list[float], peaks: tuple[float, ...] = (0.3, 0.5),
                           noise_seeds: tuple[int, ...] = (0, 1, 2), phase_seed: int = 1, seconds: float = 1.0,
                           settings: DecodeSettings = TONE_SETTINGS) -> MelPeakError:
    """How far the diffusion decoder puts each tone's mel peak from the input's (tokens -> latents
    -> VAE mel, vocoder left out), over the middle half of each clip; see :class:`MelPeakError`."""
    from codec.mel import LogMelFrontEnd

    if getattr(codec, "decoder", None) is None:
        raise ValueError("this codec has no decoder; load it with its decoder to measure the decoded mel.")
    if not (peaks and noise_seeds):
        raise ValueError("peaks and noise_seeds must each hold at least one value.")
    front_end = LogMelFrontEnd(codec.config)
    errors = []
    for peak in peaks:
        waves, _ = held_out_tones(0, codec.sample_rate, seconds, seed=phase_seed, frequencies=frequencies, peak=peak)
        enc = codec.encode(list(waves), codec.sample_rate)
        if enc.tokens.shape[1] > codec.config.tokens_per_segment:  # rows below are windows, not clips
            raise ValueError(f"seconds={seconds} gives {enc.tokens.shape[1]} token frames, more than one decoder "
                             f"window ({codec.config.tokens_per_segment}); use shorter tones.")
        with torch.inference_mode():
            mel = front_end(waves).squeeze(1)  # padded to whole windows: the clip's frames come first
            frames = int(round(seconds * 1000 / codec.config.frame_shift_ms))
            lo, hi = frames // 4, 3 * frames // 4
            truth = mel_peak_position(mel[:, lo:hi].mean(1))
            for seed in noise_seeds:
                latents, _, _ = codec.decoder.decode_latents(
                    enc.tokens, codec.acoustic.codebook, codec.semantic.centroids, enc.lengths, settings,
                    generator=torch.Generator().manual_seed(seed))
                decoded = codec.decoder.latents_to_mel(latents).float().squeeze(1)
                errors.append(mel_peak_position(decoded[:, lo:hi].mean(1)) - truth)
    e = torch.stack(errors)  # [levels x draws, tones]
    spread = e.std(0, unbiased=False)
    return MelPeakError([float(f) for f in frequencies], e.mean(0).tolist(), spread.tolist(), float(e.abs().mean()))


def token_pitch_identification(codec: Any, frequencies: list[float], peaks: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6),
                               phase_seed: int = 1, seconds: float = 1.0) -> dict[str, tuple[int, int]]:
    """Do a codec's tokens tell these tones apart? For every tone at every level, the token
    sequences (middle half of the frames) of all tones at the other levels: it counts as told
    apart when a sequence of the same tone differs in fewer ids than any sequence of another tone
    (ties count as not told apart). {"both" / "semantic" / "acoustic": (told apart, tones x levels)}."""
    if len(peaks) < 2 or len(frequencies) < 2:
        raise ValueError("need at least 2 levels and 2 frequencies to compare token sequences.")
    seqs = []
    for peak in peaks:
        waves, _ = held_out_tones(0, codec.sample_rate, seconds, seed=phase_seed, frequencies=frequencies, peak=peak)
        tokens = codec.encode(list(waves), codec.sample_rate).tokens
        lo, hi = tokens.shape[1] // 4, 3 * tokens.shape[1] // 4
        seqs.append(tokens[:, lo:hi])
    seqs = torch.stack(seqs)  # [levels, tones, frames, 2]
    n_levels, n_tones = seqs.shape[:2]
    same_tone = torch.eye(n_tones, dtype=torch.bool)
    out = {}
    for name, streams in (("both", [0, 1]), ("semantic", [0]), ("acoustic", [1])):
        told = 0
        for q in range(n_levels):
            others = torch.cat([seqs[r] for r in range(n_levels) if r != q])  # [(levels-1) x tones, frames, 2]
            diff = (seqs[q][:, None, :, streams] != others[None, :, :, streams]).sum((-1, -2))  # [tones, candidates]
            is_same = same_tone.repeat(1, n_levels - 1)
            best_same = diff.masked_fill(~is_same, torch.iinfo(diff.dtype).max).amin(1)
            best_other = diff.masked_fill(is_same, torch.iinfo(diff.dtype).max).amin(1)
            told += int((best_same < best_other).sum())
        out[name] = (told, n_levels * n_tones)
    return out
