"""What ``evaluate_generation`` returns: the summary numbers, one row per clip (both sets, failures
included), the caveats and the models used; a terminal table, a JSON file and a CSV of the clip rows."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.eval.clip_sources import SetFeatures
    from semantilm.eval.fad import FadResult
    from semantilm.eval.kl import PairedKL

__all__ = ["CSV_COLUMNS", "GenerationEvaluation", "clip_rows", "csv_path_for"]

CSV_COLUMNS = ("set", "name", "caption", "seconds", "clap_score", "kl", "kl_pairs", "top_label", "error")


def csv_path_for(json_path: str | os.PathLike) -> Path:
    """The per-clip CSV that goes beside ``json_path`` (same name, ``.csv``)."""
    return Path(json_path).with_suffix(".csv")


def _rows_of(label: str, features: SetFeatures, scores: list | None, kl: PairedKL | None,
             labels: list[str] | None) -> list[dict[str, Any]]:
    probs = features.rows("tagger")
    rows = []
    for i, name in enumerate(features.names):
        rows.append({
            "set": label, "name": name, "caption": features.captions[i] or "",
            "seconds": round(features.seconds[i], 4),
            "clap_score": scores[i] if scores is not None else None,
            "kl": kl.per_clip[i] if kl is not None else None,
            "kl_pairs": kl.pairs[i] if kl is not None else None,
            "top_label": labels[int(np.argmax(probs[i]))] if probs is not None and labels else None,
            "error": None,
        })
    for failure in features.failures:
        rows.append({**dict.fromkeys(CSV_COLUMNS), "set": label, "name": failure.name, "error": failure.reason})
    return rows


def clip_rows(gen: SetFeatures, ref: SetFeatures | None, kl: PairedKL | None, scores: list | None,
              ref_scores: list | None, labels: list[str] | None) -> list[dict[str, Any]]:
    """One row per clip of both sets (``CSV_COLUMNS``): its CLAP score, KL and the number of reference
    clips it was paired with, the tagger's likeliest label; a clip that could not be judged has ``error``."""
    rows = _rows_of("generated", gen, scores, kl, labels)
    if ref is not None:
        rows += _rows_of("reference", ref, ref_scores, None, labels)
    return rows


def _mean(values: list | None) -> float | None:
    found = [v for v in values or [] if v is not None]
    return float(np.mean(found)) if found else None


def _clean(value: Any) -> Any:
    """NaN -> None, numpy scalars -> Python numbers, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class GenerationEvaluation:
    """summary: the numbers (``fad``, ``fad_infinity``, ``fad_low`` / ``fad_high`` (bootstrap interval),
    ``kl``, ``clap_score``, ``clap_score_reference``, counts); clips: per-clip rows; unavailable: metric ->
    why it was not measured; notes: caveats; settings: models (name, sample rate), inputs, seed."""

    summary: dict[str, Any]
    clips: list[dict[str, Any]]
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    fad: dict[str, Any] | None = None

    @classmethod
    def build(cls, *, fad: FadResult | None, kl: PairedKL | None, clap: list | None, clap_reference: list | None,
              unavailable: dict[str, str], clips: list[dict[str, Any]], settings: dict[str, Any],
              counts: dict[str, int]) -> GenerationEvaluation:
        summary: dict[str, Any] = {f"num_{k}": v for k, v in counts.items()}
        if fad is not None:
            summary["fad"] = fad.value
            summary["fad_infinity"] = fad.infinity["value"] if fad.infinity else None
            summary["fad_low"] = fad.bootstrap["low"] if fad.bootstrap else None
            summary["fad_high"] = fad.bootstrap["high"] if fad.bootstrap else None
        if kl is not None:
            summary["kl"], summary["kl_paired_clips"] = kl.mean, kl.num_paired
        if clap is not None:
            summary["clap_score"] = _mean(clap)
            summary["clap_scored_clips"] = sum(v is not None for v in clap)
        if clap_reference is not None:
            summary["clap_score_reference"] = _mean(clap_reference)
        return cls(summary, clips, unavailable, list(fad.notes) if fad else [], settings,
                   asdict(fad) if fad is not None else None)

    def log_values(self) -> dict[str, float]:
        """The summary's numbers (for training logs / tensorboard)."""
        return {k: float(v) for k, v in self.summary.items() if isinstance(v, (int, float)) and v is not None}

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def _model(self, key: str) -> str:
        model = self.settings.get(key) or {}
        return f"{model.get('name')}, {model.get('sample_rate')} Hz" if model else "?"

    def _table_rows(self) -> list[list[str]]:
        s, rows = self.summary, []
        if "fad" in s:
            details = []
            if s.get("fad_infinity") is not None:
                details.append(f"FAD-inf {s['fad_infinity']:.4f} (r2 {self.fad['infinity']['r2']:.2f})")
            if s.get("fad_low") is not None:
                b = self.fad["bootstrap"]
                details.append(f"{b['level']:.0%} bootstrap interval [{s['fad_low']:.4f}, {s['fad_high']:.4f}]")
            rows.append([f"FAD ↓ ({self._model('fad_model')})", f"{s['fad']:.4f}",
                         f"{s['num_generated']} generated / {s['num_reference']} reference", "; ".join(details)])
        if "kl" in s:
            rows.append([f"KL ↓ ({self._model('tagger')})", f"{s['kl']:.4f}",
                         f"{s['kl_paired_clips']} clips paired by caption", "KL(reference || generated), softmax"])
        if "clap_score" in s:
            ref = s.get("clap_score_reference")
            rows.append([f"CLAP score ↑ ({self._model('clap_model')})", f"{s['clap_score']:.4f}",
                         f"{s['clap_scored_clips']} captioned clips",
                         f"reference clips: {ref:.4f}" if ref is not None else ""])
        return rows

    def table(self) -> str:
        """A markdown table of the metrics, then the caveats, what was not measured and the failures."""
        lines = ["| metric | value | over | details |", "|---|---:|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in self._table_rows()]
        lines += [f"\nnote: {note}" for note in self.notes]
        lines += [f"\n{name}: not measured ({reason})." for name, reason in self.unavailable.items()]
        failed = [c for c in self.clips if c["error"]]
        if failed:
            lines.append(f"\n{len(failed)} clip(s) could not be judged (listed in the CSV), e.g. "
                         f"{failed[0]['set']} {failed[0]['name']!r}: {failed[0]['error']}")
        return "\n".join(lines)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> tuple[Path, Path]:
        """Write the JSON file ``path`` and the per-clip CSV beside it (atomically; both are refused before
        either is written when one exists, unless ``overwrite``). Returns both paths."""
        from plumbing.io import atomic_write, refuse_existing

        json_path, csv_path = Path(path), csv_path_for(path)
        refuse_existing([json_path, csv_path], overwrite)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.clips:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})
        atomic_write(csv_path, buffer.getvalue())
        atomic_write(json_path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return json_path, csv_path
