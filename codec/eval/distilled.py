"""The distilled decoder's quality gate: its 1/2/4-step decodes against the guided 50-step DDIM teacher.

Held-out tones on the 100 Hz grid (phases, levels and decode noise other than the distill
stage's) are encoded once; the same tokens are decoded by the teacher (official DDIM, 50 steps,
eta 1, guidance ``config.cfg_scale``), by the teacher again with other noise (how far two
teacher samples lie apart: the floor of any distance to it), and by the student at each step
count. Per decoder: whole-decode time (UNet, VAE and vocoder, one ``decode`` call per level and
seed), latent relative L2 and mel distance to the teacher's output from the same tokens, mel
distance to the input, and the share of decodes whose dominant frequency is within 3 % of the
tone's. The gate (:func:`gate`): the 4-step student's pitch share within 6 points of the
teacher's and its decode >= 8x faster. With ``decoder_dtypes`` the student's largest step count is
also decoded by a copy of the codec whose decoder runs in each of those precisions (what
``load_codec(decoder_dtype=...)`` sets), from the same tokens and noise.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from codec.sampling import DecodeSettings

__all__ = ["GRID_TONES", "DecoderRow", "compare_distilled", "gate", "markdown_table"]

GRID_TONES = tuple(float(f) for f in range(200, 1001, 100))
TEACHER = DecodeSettings(sampler="ddim", steps=50)


@dataclass
class DecoderRow:
    """One decoder's figures, summed (seconds) or averaged (distances) over every level and seed."""

    decoder: str
    unet_passes: int  # UNet evaluations per window
    seconds: float
    latent_to_teacher: float  # ||z - z_teacher|| / ||z_teacher||
    mel_to_teacher: float
    mel_to_input: float
    pitch_ok: int
    decodes: int
    measured: list[float] = field(default_factory=list)

    @property
    def pitch_share(self) -> float:
        return self.pitch_ok / self.decodes

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pitch_share": self.pitch_share}


def _decoders(step_counts: tuple[int, ...], dtypes: tuple[str, ...]) -> list[tuple[str, DecodeSettings, int, int, str]]:
    """(name, settings, UNet passes per window, noise seed offset, decoder dtype or "") of every decoder compared."""
    rows = [("teacher: DDIM 50, guidance", TEACHER, 100, 0, ""), ("teacher, other noise", TEACHER, 100, 1000, "")]
    rows += [(f"student: {k} step{'s' if k > 1 else ''}", DecodeSettings(sampler="distilled", steps=k), k, 0, "")
             for k in step_counts]
    k = max(step_counts)
    rows += [(f"student: {k} steps, {dtype} decoder", DecodeSettings(sampler="distilled", steps=k), k, 0, dtype)
             for dtype in dtypes]
    return rows


def _cast_codecs(codec: Any, dtypes: tuple[str, ...]) -> dict[str, Any]:
    """``codec`` under "" and, per dtype, a copy whose decoder runs in it (``DiffusionDecoder.set_dtype``)."""
    models = {"": codec}
    for dtype in dtypes:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"decoder_dtypes: {dtype!r} is not a torch dtype; use e.g. 'bfloat16' or 'float16'.")
        models[dtype] = copy.deepcopy(codec)
        models[dtype].decoder.set_dtype(getattr(torch, dtype))
    return models


def compare_distilled(codec: Any, frequencies: tuple[float, ...] = GRID_TONES, phase_seed: int = 7,
                      peaks: tuple[float, ...] = (0.35, 0.55), noise_seeds: tuple[int, ...] = (10, 11),
                      step_counts: tuple[int, ...] = (1, 2, 4), seconds: float = 1.0,
                      tolerance: float = 0.03, decoder_dtypes: tuple[str, ...] = ()) -> list[DecoderRow]:
    """The rows of the comparison (see the module docstring); ``codec`` must have a student."""
    from codec.eval.metrics import mel_distance
    from codec.eval.quality import _pitch_rows, held_out_tones

    if codec.decoder is None or codec.decoder.student is None:
        raise ValueError("the codec has no distilled decoder to compare; train one with the distill stage.")
    decoders = _decoders(step_counts, tuple(decoder_dtypes))
    models = _cast_codecs(codec, tuple(decoder_dtypes))
    sums = {name: dict(seconds=0.0, latent=0.0, mel_t=0.0, mel_in=0.0, ok=0, n=0, measured=[]) for name, *_ in decoders}
    for peak in peaks:
        waves, freqs = held_out_tones(0, codec.sample_rate, seconds, seed=phase_seed, frequencies=list(frequencies),
                                      peak=peak)
        enc = codec.encode(list(waves), codec.sample_rate)
        n = waves.shape[1]
        if peak == peaks[0]:  # warm-up, untimed: first calls pay one-off costs
            for model in models.values():
                for settings in (DecodeSettings(steps=2), DecodeSettings(sampler="distilled", steps=min(step_counts))):
                    model.decode(enc.tokens, enc.lengths, settings, generator=torch.Generator().manual_seed(0))
        for seed in noise_seeds:
            reference: dict[str, torch.Tensor] = {}
            for name, settings, _, offset, dtype in decoders:
                generator = torch.Generator().manual_seed(seed + offset)
                seen: list[torch.Tensor] = []  # the final latents, as they enter the VAE
                start = time.perf_counter()
                out = _decode_keeping_latents(models[dtype], enc, settings, generator, seen)
                elapsed = time.perf_counter() - start
                latents = torch.cat(seen).float()
                audio = torch.nn.functional.pad(out.audio[:, :n], (0, max(0, n - out.audio.shape[1])))
                if not reference:
                    reference = {"latents": latents, "audio": audio}
                s = sums[name]
                s["seconds"] += elapsed
                s["latent"] += float((latents - reference["latents"]).norm() / reference["latents"].norm())
                s["mel_t"] += float(mel_distance(reference["audio"], audio).mean())
                s["mel_in"] += float(mel_distance(waves, audio).mean())
                for row in _pitch_rows(out.audio, freqs, n, codec.sample_rate, tolerance):
                    s["ok"] += int(row["ok"])
                    s["n"] += 1
                    s["measured"].append(row["measured"])
    runs = len(peaks) * len(noise_seeds)
    return [DecoderRow(name, passes, sums[name]["seconds"], sums[name]["latent"] / runs, sums[name]["mel_t"] / runs,
                       sums[name]["mel_in"] / runs, sums[name]["ok"], sums[name]["n"], sums[name]["measured"])
            for name, _, passes, *_ in decoders]


def _decode_keeping_latents(codec: Any, enc: Any, settings: DecodeSettings, generator: torch.Generator,
                            seen: list[torch.Tensor]) -> Any:
    """``codec.decode`` that also appends the sampled latents of every window batch to ``seen``."""
    decoder = codec.decoder
    real = decoder.latents_to_waveform

    def keep(latents: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append(latents.detach().clone())
        return real(latents, *args, **kwargs)

    decoder.latents_to_waveform = keep
    try:
        return codec.decode(enc.tokens, enc.lengths, settings, generator=generator)
    finally:
        del decoder.latents_to_waveform


def gate(rows: list[DecoderRow], steps: int = 4, max_pitch_drop: float = 0.06, min_speedup: float = 8.0) -> dict:
    """Does the ``steps``-step student pass: pitch share within ``max_pitch_drop`` of the teacher's
    and a whole decode ``min_speedup`` times faster? Returns the figures and ``passed``."""
    teacher = rows[0]
    student = next(r for r in rows if r.decoder.startswith(f"student: {steps} step"))
    speedup = teacher.seconds / student.seconds
    drop = teacher.pitch_share - student.pitch_share
    return {"steps": steps, "teacher_pitch": teacher.pitch_share, "student_pitch": student.pitch_share,
            "pitch_drop": drop, "speedup": speedup, "passed": bool(drop <= max_pitch_drop and speedup >= min_speedup)}


def markdown_table(rows: list[DecoderRow]) -> str:
    """The comparison as a markdown table (times relative to the teacher's)."""
    teacher = rows[0].seconds
    lines = ["| decoder | UNet passes / window | decode time | speed-up | latent rel L2 to teacher | "
             "mel dist to teacher | mel dist to input | pitch within 3 % |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.decoder} | {r.unet_passes} | {r.seconds:.2f} s | {teacher / r.seconds:.1f}x | "
                     f"{r.latent_to_teacher:.3f} | {r.mel_to_teacher:.3f} | {r.mel_to_input:.3f} | "
                     f"{r.pitch_share:.0%} ({r.pitch_ok}/{r.decodes}) |")
    return "\n".join(lines)
