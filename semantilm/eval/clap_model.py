"""A CLAP model (``transformers.ClapModel``) as the judge of generated audio: its audio embeddings for
FAD and the CLAP score, its text embeddings for the CLAP score.

Audio is cut into windows of at most the feature extractor's length (10 s at 48 kHz for LAION-CLAP)
and each clip's embedding is the normalised mean of its windows' normalised embeddings. The extractor's
own handling of longer input is never used: it crops at random (``rand_trunc``) or, for fused models,
marks a random clip of each batch as long (``fusion``); both would make the numbers change from run to
run. Here every window is marked short, so a clip gets the same embedding whatever its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from semantilm.eval.audio_models import run_windows
from semantilm.eval.pretrained_audio_models import PretrainedModelError, load_config_of, load_pretrained

__all__ = ["ClapEmbedder", "is_clap"]


def is_clap(config: Any) -> bool:
    return getattr(config, "model_type", None) == "clap"


def _features(output: Any) -> torch.Tensor:
    """The projected embeddings of ``get_audio_features`` / ``get_text_features`` (a tensor in older
    transformers, the ``pooler_output`` of a model output in newer ones), L2-normalised."""
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return torch.nn.functional.normalize(tensor.float(), dim=-1)


class ClapEmbedder:
    """Audio and text embeddings of a CLAP checkpoint (hub name or folder with config, weights, feature
    extractor and, for text, tokenizer files)."""

    def __init__(self, name: str, device: str = "cpu", cache_dir: str | None = None, batch_size: int = 8,
                 option: str = "--clap-model"):
        from transformers import AutoFeatureExtractor, ClapModel

        self.name, self.device, self.batch_size, self.cache_dir, self.option = name, device, batch_size, cache_dir, option
        config = load_config_of(name, "CLAP model", option, cache_dir)
        if not is_clap(config):
            raise PretrainedModelError(f"the CLAP model {name!r} ({option}) is a {config.model_type!r} model; "
                                       "pass a CLAP checkpoint such as laion/clap-htsat-unfused.")
        self.extractor = load_pretrained(AutoFeatureExtractor, name, "CLAP model", option, cache_dir)
        self.model = load_pretrained(ClapModel, name, "CLAP model", option, cache_dir).to(device).eval()
        self.sample_rate = int(self.extractor.sampling_rate)
        fused = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        self._truncation = "fusion" if fused else "rand_trunc"  # the input layout the audio tower expects
        self._tokenizer = None

    def _audio_forward(self, input_features: torch.Tensor, **_: Any) -> torch.Tensor:
        short = torch.zeros(input_features.shape[0], 1, dtype=torch.bool, device=input_features.device)
        return _features(self.model.get_audio_features(input_features=input_features, is_longer=short))

    def embed(self, waves: Sequence[torch.Tensor]) -> np.ndarray:
        """FloatArray[B, D]: each clip's unit-length audio embedding (``waves`` mono at ``sample_rate``)."""
        mean = run_windows(self._audio_forward, self.extractor, waves, self.batch_size, self.device,
                           truncation=self._truncation)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """FloatArray[len(texts), D]: unit-length text embeddings (captions longer than the tokenizer's
        limit are cut)."""
        from transformers import AutoTokenizer

        if self._tokenizer is None:
            self._tokenizer = load_pretrained(AutoTokenizer, self.name, "CLAP model tokenizer", self.option,
                                              self.cache_dir)
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                        return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
                rows.append(_features(self.model.get_text_features(**batch)).cpu().numpy())
        return np.concatenate(rows)
