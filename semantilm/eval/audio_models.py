"""Audio models that judge generated clips, behind one small interface: a clip (mono, at the model's
sample rate) is cut into windows no longer than the model's input, each window goes through the
model's own feature extractor, and the clip's result is the mean over its windows.

``AudioEmbedder``  FAD embeddings of any transformers audio model (pooled output, or the mean over time
                   of the last hidden state);
``AudioTagger``    label probabilities of an audio classifier (softmax of its logits).
The CLAP embedder is in :mod:`semantilm.eval.clap_model`.

Windows of equal feature shape are batched; windows are never padded to one another, so a clip's
numbers do not depend on what else is in its batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from semantilm.eval.pretrained_audio_models import PretrainedModelError, load_config_of, load_pretrained

__all__ = ["DEFAULT_WINDOW_SECONDS", "split_windows", "window_samples", "run_windows", "AudioEmbedder", "AudioTagger"]

DEFAULT_WINDOW_SECONDS = 10.0  # models whose feature extractor does not say its input length


def split_windows(wave: torch.Tensor, window: int) -> list[torch.Tensor]:
    """``wave`` cut into ceil(N / window) pieces of (nearly) equal length, none longer than ``window``
    (no short scrap at the end)."""
    count = max(1, math.ceil(wave.numel() / window))
    return list(wave.split(math.ceil(wave.numel() / count)))


def window_samples(extractor: Any) -> int:
    """The longest input, in samples at the extractor's rate, that the model sees whole."""
    rate = int(extractor.sampling_rate)
    if getattr(extractor, "nb_max_samples", None):  # CLAP
        return int(extractor.nb_max_samples)
    if getattr(extractor, "n_samples", None):  # Whisper
        return int(extractor.n_samples)
    if getattr(extractor, "max_length", None) and getattr(extractor, "num_mel_bins", None):  # AST: 10 ms frames
        return int(extractor.max_length) * rate // 100
    return int(DEFAULT_WINDOW_SECONDS * rate)


def run_windows(
    forward: Callable[..., torch.Tensor], extractor: Any, waves: Sequence[torch.Tensor], batch_size: int,
    device: str | torch.device, **extractor_kwargs: Any,
) -> np.ndarray:
    """``forward(**features)`` -> FloatTensor[B, D] for every window of every clip; the mean over each
    clip's windows as FloatArray[len(waves), D]."""
    rate = int(extractor.sampling_rate)
    limit = window_samples(extractor)
    windows, owner = [], []
    for i, wave in enumerate(waves):
        for piece in split_windows(wave.detach().float().cpu(), limit):
            windows.append(piece)
            owner.append(i)
    features = [extractor(w.numpy(), sampling_rate=rate, return_tensors="pt", **extractor_kwargs) for w in windows]
    groups: dict[tuple, list[int]] = {}
    for k, f in enumerate(features):
        groups.setdefault(tuple((n, tuple(v.shape)) for n, v in sorted(f.items())), []).append(k)
    results: list[np.ndarray | None] = [None] * len(windows)
    with torch.inference_mode():
        for members in groups.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                batch = {n: torch.cat([features[k][n] for k in chunk]).to(device) for n in features[chunk[0]]}
                out = forward(**batch).float().cpu().numpy()
                for k, row in zip(chunk, out):
                    results[k] = row
    per_clip = [[] for _ in waves]
    for k, i in enumerate(owner):
        per_clip[i].append(results[k])
    return np.stack([np.mean(rows, axis=0) for rows in per_clip])


class AudioEmbedder:
    """FAD embeddings from a transformers audio model (``AutoModel``; an encoder-decoder uses its encoder).

    Per window: the model's pooled output when it has one, else the mean over time of its last hidden
    state. Windows are run one at a time unless their features have one shape.
    """

    def __init__(self, name: str, device: str = "cpu", cache_dir: str | None = None, batch_size: int = 8):
        from transformers import AutoFeatureExtractor, AutoModel

        self.name, self.device, self.batch_size = name, device, batch_size
        role, option = "FAD embedding model", "--fad-model"
        self.config = load_config_of(name, role, option, cache_dir)
        self.extractor = load_pretrained(AutoFeatureExtractor, name, role, option, cache_dir)
        model = load_pretrained(AutoModel, name, role, option, cache_dir)
        if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model = model.get_encoder()
        self.model = model.to(device).eval()
        self.sample_rate = int(self.extractor.sampling_rate)

    def _forward(self, **features: torch.Tensor) -> torch.Tensor:
        out = self.model(**features)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None and pooled.dim() == 2:
            return pooled
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is None or hidden.dim() != 3:
            raise PretrainedModelError(f"the FAD embedding model {self.name!r} gives neither a pooled output nor "
                                       "hidden states [batch, time, features]; choose an audio encoder.")
        return hidden.mean(dim=1)

    def embed(self, waves: Sequence[torch.Tensor]) -> np.ndarray:
        """FloatArray[B, D]: one embedding per clip (``waves`` mono at ``sample_rate``)."""
        return run_windows(self._forward, self.extractor, waves, self.batch_size, self.device)


class AudioTagger:
    """Label probabilities of an audio classifier (``AutoModelForAudioClassification``, e.g. AST on AudioSet):
    softmax over its logits per window, the mean over a clip's windows (audiocraft's KL convention)."""

    def __init__(self, name: str, device: str = "cpu", cache_dir: str | None = None, batch_size: int = 8):
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
        from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES

        self.name, self.device, self.batch_size = name, device, batch_size
        role, option = "audio tagger", "--tagger"
        config = load_config_of(name, role, option, cache_dir)
        if config.model_type not in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES:
            raise PretrainedModelError(f"the audio tagger {name!r} is a {config.model_type!r} model, not an audio "
                                       "classifier; pass an AudioSet tagger such as an AST checkpoint to --tagger.")
        self.extractor = load_pretrained(AutoFeatureExtractor, name, role, option, cache_dir)
        self.model = load_pretrained(AutoModelForAudioClassification, name, role, option, cache_dir).to(device).eval()
        self.sample_rate = int(self.extractor.sampling_rate)
        labels = getattr(self.model.config, "id2label", None) or {}
        self.labels = [str(labels.get(i, i)) for i in range(self.model.config.num_labels)]

    def _forward(self, **features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(**features).logits.float(), dim=-1)

    def probabilities(self, waves: Sequence[torch.Tensor]) -> np.ndarray:
        """FloatArray[B, labels]: each clip's label distribution (``waves`` mono at ``sample_rate``)."""
        return run_windows(self._forward, self.extractor, waves, self.batch_size, self.device)
