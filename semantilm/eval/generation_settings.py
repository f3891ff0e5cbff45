"""The settings of ``evaluate_generation`` (a light module: the command line's parser reads the metric
names without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass

from semantilm.eval.pretrained_audio_models import DEFAULT_CLAP, DEFAULT_TAGGER

__all__ = ["METRICS", "NEEDS_REFERENCE", "ON_ERROR", "GenerationMetricsSettings"]

METRICS = ("fad", "kl", "clap")
NEEDS_REFERENCE = ("fad", "kl")
ON_ERROR = ("skip", "stop")


@dataclass
class GenerationMetricsSettings:
    """What ``evaluate_generation`` measures and with which models.

    metrics:    any of ``METRICS`` (``fad`` and ``kl`` need a reference set).
    clap_model: CLAP checkpoint (hub name or folder) of the CLAP score, and of FAD when ``fad_model`` is None.
    tagger:     audio classifier whose label distributions KL compares (an AudioSet tagger).
    fad_model:  any transformers audio model (hub name or folder) whose embeddings FAD compares; None: CLAP.
    bootstrap:  resampling rounds of FAD's interval (0: none); seed: of those and of FAD-infinity's subsets.
    on_error:   ``skip`` lists unreadable or too short clips as failures and goes on; ``stop`` raises.
    """

    metrics: tuple[str, ...] = METRICS
    clap_model: str = DEFAULT_CLAP
    tagger: str = DEFAULT_TAGGER
    fad_model: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    bootstrap: int = 200
    seed: int = 0
    cache_dir: str | None = None
    on_error: str = "skip"
    progress: bool = True

    def __post_init__(self) -> None:
        from plumbing.checks import check_int

        self.metrics = tuple(self.metrics)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics or len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics must be distinct names from {list(METRICS)}, got {list(self.metrics)}.")
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.bootstrap, "bootstrap", minimum=0)
        check_int(self.seed, "seed", minimum=0, maximum=2**32 - 1)
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {list(ON_ERROR)}, got {self.on_error!r}.")

    @property
    def fad_embedder(self) -> str:
        return self.fad_model or self.clap_model
