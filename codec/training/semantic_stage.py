"""The semantic stage: fit the semantic centroid table of a codec on its own AudioMAE features.

No gradients: every corpus window goes through the codec's AudioMAE (batched), the stacked
features of the non-padding frames are gathered, mini-batch k-means (:mod:`.kmeans`) fits
``num_clusters`` centroids, and they replace the codec's table. The result is a function of the
codec, the windows (their seed) and ``kmeans.seed``. Written: ``<output_dir>/codec``
(``save_pretrained``), ``<output_dir>/codebook_{V}_0.npy`` (the table in the official format)
and ``<output_dir>/history.jsonl`` (mean squared distance per k-means epoch, wall time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from codec.training.history import HistoryLog
from codec.training.kmeans import (
    KMeansConfig,
    fit_kmeans,
    save_centroids_npy,
    semantic_features,
    set_semantic_centroids,
)
from codec.training.windows import ClipWindows
from plumbing.config_file import check_field_types

__all__ = ["SemanticStageConfig", "SemanticStageResult", "window_clips", "collect_features", "fit_semantic_stage"]

logger = logging.getLogger(__name__)


@dataclass
class SemanticStageConfig:
    """The ``kmeans`` section of a codec recipe (stage ``semantic``)."""

    num_clusters: int | None = None  # null: the codec's semantic_codebook_size (its vocabulary)
    batch_size: int = 4096  # feature vectors per k-means update
    epochs: int = 20  # k-means passes over the features
    seed: int = 0  # k-means++ seeding, batch order, re-seeding of dead centroids
    reassign_dead_after: int = 2  # epochs without an assignment before a centroid is re-seeded
    feature_batch_size: int = 16  # windows per AudioMAE call
    window_passes: int = 1  # passes over the corpus windows (each pass draws new window offsets)

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.num_clusters is not None and self.num_clusters < 2:
            raise ValueError(f"num_clusters must be at least 2 or null, got {self.num_clusters}.")
        for name in ("batch_size", "epochs", "reassign_dead_after", "feature_batch_size", "window_passes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")

    def kmeans(self, num_clusters: int) -> KMeansConfig:
        """The :class:`KMeansConfig` of this section for ``num_clusters`` centroids."""
        return KMeansConfig(num_clusters=num_clusters, batch_size=self.batch_size, epochs=self.epochs,
                            seed=self.seed, reassign_dead_after=self.reassign_dead_after)


@dataclass
class SemanticStageResult:
    """centroids [V, D] (on the CPU); inertia per k-means epoch; num_features fitted on."""

    centroids: torch.Tensor
    inertia: list[float] = field(default_factory=list)
    num_features: int = 0
    codec_dir: Path | None = None
    table_path: Path | None = None


def window_clips(windows: ClipWindows, passes: int) -> Iterator[torch.Tensor]:
    """The valid part of every window of epochs ``0 .. passes - 1``, in each epoch's order."""
    for epoch in range(passes):
        for clip in windows.order(epoch):
            wave, valid = windows.window(epoch, clip)
            yield wave[:valid]


def collect_features(codec, windows: ClipWindows, config: SemanticStageConfig,  # noqa: ANN001 - SemantiCodec
                     progress: bool = True) -> torch.Tensor:
    """Stacked AudioMAE features [N, D] (CPU, float32) of every window, padding frames removed."""
    from tqdm.auto import tqdm

    total = len(windows) * config.window_passes
    bar = tqdm(total=total, desc="semantic features", unit="window", disable=not progress)
    parts = []
    for part in semantic_features(codec, _counted(window_clips(windows, config.window_passes), bar),
                                  batch_size=config.feature_batch_size):
        parts.append(part)
    bar.close()
    if not parts:
        raise ValueError("the corpus gave no windows to take features from.")
    return torch.cat(parts)


def _counted(clips: Iterator[torch.Tensor], bar) -> Iterator[torch.Tensor]:  # noqa: ANN001 - tqdm
    for clip in clips:
        bar.update(1)
        yield clip


def fit_semantic_stage(codec, windows: ClipWindows, config: SemanticStageConfig,  # noqa: ANN001 - SemantiCodec
                       output_dir: str | Path, progress: bool = True) -> SemanticStageResult:
    """Fit and set ``codec``'s semantic table (see the module docstring); writes the outputs."""
    output_dir = Path(output_dir)
    history = HistoryLog(output_dir, resume_step=0)
    features = collect_features(codec, windows, config, progress)
    k = config.num_clusters or codec.config.semantic_codebook_size
    if features.shape[0] < k:
        raise ValueError(f"the corpus gave {features.shape[0]} feature vectors, fewer than the {k} centroids to fit; "
                         "use more data (data.synthetic_examples, kmeans.window_passes) or fewer kmeans.num_clusters.")
    logger.info("semantic stage: k-means with %d centroids on %d features of dimension %d",
                k, features.shape[0], features.shape[1])
    fitted = fit_kmeans(features.to(codec.device), config.kmeans(k), progress=progress)
    for epoch, inertia in enumerate(fitted.inertia, start=1):  # wall_s: features + the whole fit
        history.append(epoch, {"loss": inertia})
    centroids = fitted.centroids.float().cpu()
    set_semantic_centroids(codec, centroids)
    codec_dir = output_dir / "codec"
    codec.save_pretrained(codec_dir)
    table = output_dir / f"codebook_{k}_0.npy"
    save_centroids_npy(table, centroids)
    return SemanticStageResult(centroids, list(fitted.inertia), int(features.shape[0]), codec_dir, table)
