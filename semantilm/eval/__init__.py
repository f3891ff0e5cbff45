"""Evaluation: LM loss by token kind (``lm``), prompt adherence on the synthetic sounds (``adherence``), and
the metrics of generated audio that text-to-audio papers report (``generation_metrics``: FAD, KL, CLAP score).

The names below load on first use, so ``import semantilm.eval`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate_lm": "lm",
    "prompt_adherence": "adherence",
    "evaluate_generation": "generation_metrics",
    "GenerationMetricsSettings": "generation_metrics",
    "GenerationEvaluation": "generation_report",
    "TokenDecoding": "clip_sources",
    "WaveformClips": "clip_sources",
    "open_clips": "clip_sources",
    "frechet_audio_distance": "fad",
    "frechet_distance": "fad",
    "gaussian_stats": "fad",
    "kl_divergence": "kl",
    "paired_kl": "kl",
    "clap_scores": "clap_score",
    "DEFAULT_CLAP": "pretrained_audio_models",
    "DEFAULT_TAGGER": "pretrained_audio_models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'semantilm.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
