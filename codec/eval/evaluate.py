"""Round-trip evaluation of a codec: encode, decode, and compare with the input audio.

``evaluate_codec`` runs a codec (anything with ``encode`` / ``decode`` like :class:`codec.SemantiCodec`) over clips from audio files
or a ``datasets`` corpus and scores every reconstruction with the metrics of
:mod:`codec.eval.metrics`. The result knows the codec's bitrate, renders as a markdown table and
saves as JSON (written atomically).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from codec.model import SemantiCodec
    from codec.sampling import DecodeSettings

__all__ = ["METRICS", "ClipScores", "CodecEvaluation", "evaluate_codec", "file_clips", "dataset_clips", "codec_bitrate"]

logger = logging.getLogger(__name__)

# name -> (column title, True when higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "mel": ("mel dist", False),
    "mrstft": ("MR-STFT dist", False),
    "si_sdr": ("SI-SDR dB", True),
    "pesq": ("PESQ-WB", True),
    "stoi": ("STOI", True),
    "visqol": ("ViSQOL", True),
}
OPTIONAL = ("pesq", "stoi", "visqol")


@dataclass
class ClipScores:
    """One clip: its name, length in seconds, and a score per metric (NaN with a note when it failed)."""

    name: str
    seconds: float
    scores: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class CodecEvaluation:
    """What ``evaluate_codec`` measured.

    bitrate:     bits per second of the token streams (frame_rate x (log2 V_semantic + log2 V_acoustic)).
    metrics:     the metrics that ran, in table order; unavailable: metric -> why it did not run.
    clips:       per-clip scores; ``means`` averages each metric over the clips it could score.
    settings:    decode settings and anything else needed to reproduce the numbers.
    """

    codec_variant: str
    bitrate: float
    sample_rate: int
    metrics: list[str]
    unavailable: dict[str, str]
    clips: list[ClipScores]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def means(self) -> dict[str, float]:
        out = {}
        for name in self.metrics:
            values = [c.scores[name] for c in self.clips if not math.isnan(c.scores[name])]
            out[name] = sum(values) / len(values) if values else float("nan")
        return out

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.clips)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["means"] = self.means
        data["seconds"] = self.seconds
        return data

    def table(self, per_clip: bool = False) -> str:
        """Markdown table: one summary row (mean over clips), plus one row per clip when asked."""
        titles = [METRICS[m][0] + (" ↑" if METRICS[m][1] else " ↓") for m in self.metrics]
        head = ["codec", "kbps", "clips", "audio s", *titles]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        means = self.means
        lines.append("| " + " | ".join([self.codec_variant, f"{self.bitrate / 1000:.2f}", str(len(self.clips)),
                                        f"{self.seconds:.1f}", *(_fmt(means[m]) for m in self.metrics)]) + " |")
        if per_clip:
            for c in self.clips:
                lines.append("| " + " | ".join([c.name, "", "1", f"{c.seconds:.1f}",
                                                *(_fmt(c.scores[m]) for m in self.metrics)]) + " |")
        for name, reason in self.unavailable.items():
            lines.append(f"\n{METRICS[name][0]}: not measured ({reason}).")
        failed = {m for c in self.clips for m in c.notes}
        for name in sorted(failed):
            count = sum(name in c.notes for c in self.clips)
            lines.append(f"\n{METRICS[name][0]}: {count} clip(s) could not be scored, e.g. "
                         f"{next(c.notes[name] for c in self.clips if name in c.notes)}")
        return "\n".join(lines)

    def save_json(self, path: str | Path) -> Path:
        """Write the evaluation as JSON (NaN as null), atomically."""
        from plumbing.io import atomic_write

        payload = json.dumps(_nan_to_none(self.to_dict()), indent=2, allow_nan=False) + "\n"
        return atomic_write(path, payload)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def codec_bitrate(codec: SemantiCodec) -> float:
    """Bits per second of a codec's two token streams."""
    return float(codec.frame_rate) * (math.log2(codec.semantic_vocab_size) + math.log2(codec.acoustic_vocab_size))


def file_clips(paths: str | os.PathLike | Sequence[str | os.PathLike],
               mono: str = "first") -> Iterator[tuple[str, torch.Tensor, int]]:
    """(name, waveform FloatTensor[N], sample rate) for each audio file (one path or a list of them)."""
    from codec.audio import load_audio
    from plumbing.io import path_list

    for path in path_list(paths, "paths"):
        wave, rate = load_audio(path, mono=mono)
        yield os.fspath(path), wave, rate


def dataset_clips(
    dataset: Any, audio_column: str = "audio", name_column: str | None = None
) -> Iterator[tuple[str, torch.Tensor, int]]:
    """(name, waveform, sample rate) for each row of a ``datasets`` corpus (``audio_column`` cells)."""
    from codec.data.corpus import audio_cell_to_waveform, check_columns

    check_columns(dataset.column_names, audio_column, name_column)
    for i, row in enumerate(dataset):
        wave, rate = audio_cell_to_waveform(row[audio_column], None, audio_column)
        yield (str(row[name_column]) if name_column else f"row {i}"), wave, rate


def _metric_functions(sample_rate: int) -> dict[str, Any]:
    from codec.eval import metrics as m

    return {
        "mel": lambda r, e: m.mel_distance(r, e, sample_rate),
        "mrstft": m.multi_resolution_stft_distance,
        "si_sdr": m.si_sdr,
        "pesq": lambda r, e: m.pesq_wideband(r, e, sample_rate),
        "stoi": lambda r, e: m.stoi(r, e, sample_rate),
        "visqol": lambda r, e: m.visqol(r, e, sample_rate),
    }


def _metric_names(metrics: str | Sequence[str]) -> list[str]:
    """``metrics`` (one name or a list) as a list of names of ``METRICS``, or a ``ValueError`` naming the unknown
    ones (a ``TypeError`` for decode settings given in their place)."""
    from codec.sampling import check_not_settings

    metrics = [metrics] if isinstance(metrics, str) else list(check_not_settings(metrics, "metrics"))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics={metrics!r}: unknown {unknown}; choose from {list(METRICS)}.")
    return metrics


def _settings_record(settings: DecodeSettings) -> dict[str, Any]:
    """The decode settings as a JSON-ready dict (cfg_scale left out when the codec's default was used;
    eta, the one DDIM ran with, only for DDIM)."""
    from codec.sampling import STEP_NOISE_SAMPLERS

    record = {k: v for k, v in asdict(settings).items() if v is not None}
    if settings.sampler in STEP_NOISE_SAMPLERS:
        record["eta"] = settings.ddim_eta
    return record


def evaluate_codec(
    codec: SemantiCodec,
    clips: Iterable[tuple[str, torch.Tensor, int]],
    metrics: Sequence[str] = tuple(METRICS),
    batch_size: int = 8,
    settings: DecodeSettings | None = None,
    *,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
) -> CodecEvaluation:
    """Encode and decode every clip with ``codec`` and score the reconstruction against the input.

    clips:   (name, FloatTensor[N] mono waveform, sample rate) triples, e.g. from
             :func:`file_clips` or :func:`dataset_clips`; resampled to the codec's rate.
    metrics: names from ``METRICS`` (one name or a list); optional ones whose package is missing are listed in
             ``unavailable`` with the reason instead of failing.
    settings: how ``codec.decode`` samples (default ``DecodeSettings()``); generator: seeds its draws.
    progress: a bar over the clips (and the codec's own bars inside); None shows them only when
             stderr is a terminal.
    The reconstruction is trimmed to the input's length (the codec pads to whole frames).
    """
    from codec.audio import check_long_enough, check_waveform, resample
    from codec.eval.metrics import metric_unavailable
    from codec.sampling import check_not_settings, decode_settings
    from plumbing.progress import progress_bar

    metrics = _metric_names(metrics)
    settings = decode_settings(settings)
    missing = [name for name in ("encode", "decode", "sample_rate", "frame_rate") if not hasattr(codec, name)]
    if missing:
        raise TypeError(f"codec={type(codec).__name__} cannot be evaluated: it has no {missing}.")
    if not isinstance(check_not_settings(batch_size, "batch_size"), int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    unavailable = {m: reason for m in metrics if m in OPTIONAL and (reason := metric_unavailable(m))}
    for name, reason in unavailable.items():
        logger.warning("%s not measured: %s", name, reason)
    running = [m for m in metrics if m not in unavailable]
    rate = int(codec.sample_rate)
    functions = _metric_functions(rate)
    results: list[ClipScores] = []

    shown = {} if progress is None else {"progress": progress}  # a codec's own default otherwise
    bar = progress_bar(total=len(clips) if hasattr(clips, "__len__") else None, desc="eval-codec", unit="clip",
                       progress=progress)

    def flush(batch: list[tuple[str, torch.Tensor]]) -> None:
        encoded = codec.encode([w for _, w in batch], rate, **shown)
        decoded = codec.decode(encoded.tokens, encoded.lengths, settings=settings, generator=generator, **shown)
        for (name, ref), audio, n in zip(batch, decoded.audio, decoded.lengths.tolist()):
            length = min(ref.numel(), int(n))
            ref, est = ref[:length].to(audio.device), audio[:length].float()
            scores, notes = {}, {}
            for metric in running:
                try:
                    scores[metric] = float(functions[metric](ref, est))
                except ValueError as err:  # e.g. PESQ finds no speech-like activity in the clip
                    scores[metric], notes[metric] = float("nan"), f"{name}: {err}"
            results.append(ClipScores(name, length / rate, scores, notes))
        bar.update(len(batch))

    batch: list[tuple[str, torch.Tensor]] = []
    with bar:
        for name, wave, sample_rate in clips:
            check_waveform(wave, name=f"clip {name!r}")
            wave = resample(wave.float(), int(sample_rate), rate)
            check_long_enough(wave.numel(), rate, getattr(getattr(codec, "config", None), "win_length", 1),
                              f"clip {name!r}")
            batch.append((name, wave))
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    if not results:
        raise ValueError("no clips to evaluate; pass at least one audio file or dataset row.")
    return CodecEvaluation(str(codec.variant), codec_bitrate(codec), rate, running, unavailable, results,
                           _settings_record(settings))
