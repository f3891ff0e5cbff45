"""Judging generated audio as text-to-audio papers report it: FAD against a reference set, KL between an
AudioSet tagger's label distributions of clips with the same caption, and the CLAP score of each clip
with its caption.

``evaluate_generation(generated, reference, settings)`` reads both sets (folders of audio files with
captions, token folders, or clips in memory: :mod:`semantilm.eval.clip_sources`), runs every judge model
once over every clip (:mod:`semantilm.eval.clap_model`, :mod:`semantilm.eval.audio_models`), and
computes the metrics (:mod:`semantilm.eval.fad`, :mod:`semantilm.eval.kl`,
:mod:`semantilm.eval.clap_score`). The result (:mod:`semantilm.eval.generation_report`) prints as a
table and saves as JSON with per-clip rows in a CSV beside it. See docs/generation_metrics.md for the
default models, the conventions and how the numbers compare with published ones.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from semantilm.eval.clip_sources import Clip, ClipFailure, ClipSource, SetFeatures, open_clips
from semantilm.eval.generation_report import GenerationEvaluation, clip_rows
from semantilm.eval.generation_settings import NEEDS_REFERENCE, GenerationMetricsSettings

__all__ = ["GenerationMetricsSettings", "Judges", "load_judges", "judge_clips", "evaluate_generation"]

logger = logging.getLogger(__name__)

@dataclass
class Judges:
    """The loaded models: ``clap`` (CLAP score; FAD too when ``fad`` is it), ``fad`` (FAD embedder), ``tagger``."""

    clap: Any = None
    fad: Any = None
    tagger: Any = None

    def models(self) -> dict[str, Any]:
        """Distinct models by role (a CLAP model that also embeds for FAD is listed once)."""
        found = {"clap": self.clap, "fad": self.fad if self.fad is not self.clap else None, "tagger": self.tagger}
        return {k: v for k, v in found.items() if v is not None}


def load_judges(settings: GenerationMetricsSettings) -> Judges:
    """Load the models ``settings.metrics`` need (each once)."""
    from semantilm.eval.audio_models import AudioEmbedder, AudioTagger
    from semantilm.eval.clap_model import ClapEmbedder, is_clap
    from semantilm.eval.pretrained_audio_models import load_config_of

    s = settings
    common = {"device": s.device, "cache_dir": s.cache_dir, "batch_size": s.batch_size}
    judges = Judges()
    if "clap" in s.metrics or ("fad" in s.metrics and s.fad_model is None):
        judges.clap = ClapEmbedder(s.clap_model, **common)
    if "fad" in s.metrics:
        if s.fad_model is None or (judges.clap is not None and s.fad_model == s.clap_model):
            judges.fad = judges.clap
        elif is_clap(load_config_of(s.fad_model, "FAD embedding model", "--fad-model", s.cache_dir)):
            judges.fad = ClapEmbedder(s.fad_model, option="--fad-model", **common)
        else:
            judges.fad = AudioEmbedder(s.fad_model, **common)
    if "kl" in s.metrics:
        judges.tagger = AudioTagger(s.tagger, **common)
    return judges


def _judge_batch(batch: list[Clip], judges: Judges, out: SetFeatures) -> None:
    from codec.audio import resample

    resampled: dict[int, list] = {}
    for role, model in judges.models().items():
        rate = model.sample_rate
        if rate not in resampled:
            resampled[rate] = [resample(c.wave, c.sample_rate, rate) for c in batch]
        rows = model.probabilities(resampled[rate]) if role == "tagger" else model.embed(resampled[rate])
        out.features.setdefault(role, []).append(rows)
    for clip in batch:
        out.names.append(clip.name)
        out.captions.append(clip.caption)
        out.seconds.append(clip.seconds)


def judge_clips(source: ClipSource, judges: Judges, settings: GenerationMetricsSettings, label: str) -> SetFeatures:
    """Run every judge over every clip of ``source`` in batches of ``settings.batch_size`` (progress bar
    ``label``); failures are collected (``on_error="skip"``) or raised as a ``ValueError``."""
    from tqdm.auto import tqdm

    out = SetFeatures()
    batch: list[Clip] = []
    with tqdm(total=len(source), desc=f"judging {label}", unit="clip", disable=not settings.progress) as bar:
        for item in source:
            if isinstance(item, ClipFailure):
                if settings.on_error == "stop":
                    raise ValueError(f"{label} clip {item.name!r} cannot be judged: {item.reason}")
                logger.warning("%s clip %r skipped: %s", label, item.name, item.reason)
                out.failures.append(item)
                bar.update(1)
                continue
            batch.append(item)
            if len(batch) == settings.batch_size:
                _judge_batch(batch, judges, out)
                bar.update(len(batch))
                batch = []
        if batch:
            _judge_batch(batch, judges, out)
            bar.update(len(batch))
    if judges.fad is not None and judges.fad is judges.clap:  # one CLAP pass serves both
        out.features["fad"] = out.features.get("clap", [])
    return out


def _as_source(value: Any, what: str) -> ClipSource:
    if isinstance(value, ClipSource):
        return value
    if isinstance(value, (str, os.PathLike)):
        return open_clips(value, what=what)
    raise TypeError(f"{what} must be a folder path or a ClipSource, got {type(value).__name__}.")


def _fad(gen: SetFeatures, ref: SetFeatures, settings: GenerationMetricsSettings) -> tuple[Any, str | None]:
    from semantilm.eval.fad import frechet_audio_distance

    if len(gen.names) < 2 or len(ref.names) < 2:
        return None, f"FAD needs at least 2 clips in each set (got {len(gen.names)} generated, {len(ref.names)} reference)"
    return frechet_audio_distance(gen.rows("fad"), ref.rows("fad"), settings.bootstrap, settings.seed), None


def _kl(gen: SetFeatures, ref: SetFeatures) -> tuple[Any, str | None]:
    from semantilm.eval.kl import paired_kl

    if not any(gen.captions) or not any(ref.captions):
        return None, "KL pairs clips by caption, and the generated or the reference set has no captions"
    result = paired_kl(gen.rows("tagger"), gen.captions, ref.rows("tagger"), ref.captions)
    if result.num_paired == 0:
        return None, "no generated clip has the caption of a reference clip"
    return result, None


def _clap(features: SetFeatures, judges: Judges) -> tuple[list | None, str | None]:
    from semantilm.eval.clap_score import clap_scores

    if not any(features.captions):
        return None, "no clip has a caption (metadata.csv with file_name,caption, or a caption column)"
    return clap_scores(features.rows("clap"), features.captions, judges.clap.embed_texts), None


def _model_record(judges: Judges, settings: GenerationMetricsSettings) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if judges.fad is not None:
        record["fad_model"] = {"name": settings.fad_embedder, "sample_rate": judges.fad.sample_rate}
    if judges.tagger is not None:
        record["tagger"] = {"name": settings.tagger, "sample_rate": judges.tagger.sample_rate,
                            "labels": len(judges.tagger.labels)}
    if judges.clap is not None:
        record["clap_model"] = {"name": settings.clap_model, "sample_rate": judges.clap.sample_rate}
    return record


def evaluate_generation(generated: Any, reference: Any = None,
                        settings: GenerationMetricsSettings | None = None) -> GenerationEvaluation:
    """FAD, KL and CLAP score (``settings.metrics``) of the ``generated`` clips against ``reference``.

    generated / reference: a folder of audio files with captions (``metadata.csv``), a token folder
    (decoded by the codec its manifest names), or a ``ClipSource``. A metric that cannot be computed
    (no captions, no caption in common, fewer than 2 clips for FAD) is listed in ``unavailable`` with
    the reason; when none can, a ``ValueError`` says why.
    """
    settings = settings or GenerationMetricsSettings()
    missing = [m for m in settings.metrics if m in NEEDS_REFERENCE]
    if reference is None and missing:
        raise ValueError(f"{', '.join(missing)} compare with reference clips; pass a reference set or ask only for clap.")
    gen_source = _as_source(generated, "generated")
    ref_source = _as_source(reference, "reference") if reference is not None else None
    judges = load_judges(settings)
    gen = judge_clips(gen_source, judges, settings, "generated")
    if not gen.names:
        first = gen.failures[0] if gen.failures else None
        raise ValueError(f"no clip of {gen_source.description} could be judged"
                         + (f" (e.g. {first.name!r}: {first.reason})" if first else " (it holds none)") + ".")
    ref = judge_clips(ref_source, judges, settings, "reference") if ref_source is not None else None
    if ref is not None and not ref.names:
        raise ValueError(f"no clip of {ref_source.description} could be judged.")
    unavailable: dict[str, str] = {}
    fad = kl = scores = ref_scores = None
    if "fad" in settings.metrics:
        fad, unavailable["fad"] = _fad(gen, ref, settings)
    if "kl" in settings.metrics:
        kl, unavailable["kl"] = _kl(gen, ref)
    if "clap" in settings.metrics:
        scores, unavailable["clap"] = _clap(gen, judges)
        if ref is not None and any(ref.captions):
            ref_scores, _ = _clap(ref, judges)
    unavailable = {k: v for k, v in unavailable.items() if v is not None}
    if len(unavailable) == len(settings.metrics):
        raise ValueError("no metric could be computed: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()) + ".")
    labels = judges.tagger.labels if judges.tagger is not None else None
    return GenerationEvaluation.build(
        fad=fad, kl=kl, clap=scores, clap_reference=ref_scores, unavailable=unavailable,
        clips=clip_rows(gen, ref, kl, scores, ref_scores, labels),
        settings={"metrics": list(settings.metrics), "generated": gen_source.description,
                  "reference": ref_source.description if ref_source else None, **_model_record(judges, settings),
                  "bootstrap": settings.bootstrap, "seed": settings.seed},
        counts={"generated": len(gen.names), "reference": len(ref.names) if ref else 0,
                "failed": len(gen.failures) + (len(ref.failures) if ref else 0)},
    )
