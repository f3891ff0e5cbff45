"""The codec training recipe (decoder, VAE, vocoder or semantic stage) as one function of a config.

``configs/recipes/codec/*.yaml`` -> :class:`CodecRecipeConfig` (read by
:mod:`semantilm.training.recipe_config`, so unknown keys and wrong types are errors naming the key) ->
:func:`run_codec_recipe`: build or load the codec with its decoder (optionally taking the VAE /
vocoder from earlier stage outputs), cut windows from the corpus and run the ``stage``'s
training step through :func:`codec.training.trainer.train_stage`. ``recipes/codec/train.py`` and
``semantilm train --recipe codec`` both end here.

Stages: ``decoder`` (acoustic encoder + VQ + UNet, :mod:`codec.training.losses`), ``vae``
(:mod:`codec.training.vae_stage`), ``vocoder`` (:mod:`codec.training.vocoder_stage`),
``semantic`` (k-means centroid table on the codec's AudioMAE features, no gradients,
:mod:`codec.training.semantic_stage`), ``distill`` (a few-step student of the decoder,
:mod:`codec.training.distill_stage`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codec.config import OFFICIAL_TOKEN_RATES, TINY_RANDOM
from codec.training.distill_stage import DistillConfig
from codec.training.losses import CodecTrainingConfig
from codec.training.semantic_stage import SemanticStageConfig
from codec.training.trainer import CodecTrainArgs, CodecTrainResult
from codec.training.vae_stage import VAETrainingConfig
from codec.training.vocoder_stage import VocoderTrainingConfig
from plumbing.config_file import check_field_types

__all__ = [
    "CodecModelSection",
    "CodecDataSection",
    "CodecRecipeConfig",
    "load_codec_recipe_config",
    "build_codec",
    "build_windows",
    "build_stage",
    "run_codec_recipe",
    "RESOLVED_CONFIG_FILE",
]

logger = logging.getLogger(__name__)

RESOLVED_CONFIG_FILE = "recipe.yaml"


@dataclass
class CodecModelSection:
    """The codec to train: ``tiny-random`` (tiny config, random weights) or a folder/hub repo.

    For a ``save_pretrained`` folder (e.g. an earlier stage's ``<output_dir>/codec``) the sizes
    come from its ``config.json``: ``token_rate`` must equal the folder's, and ``tiny_sizes``, when
    given, is checked against it (so every stage of one codec can share the same section).
    """

    name: str = TINY_RANDOM  # "tiny-random", a save_pretrained folder, or an official-layout folder/repo
    token_rate: int = 100  # official variant (25, 50, 100); a save_pretrained folder's own rate
    vocab: int = 16384  # official semantic vocabulary (ignored for save_pretrained folders)
    # tiny-random: SemantiCodecConfig.tiny overrides; save_pretrained folder: values it must have
    tiny_sizes: dict[str, Any] = field(default_factory=dict)
    init_seed: int = 0  # tiny-random only: seed of the random weights
    cache_dir: str | None = None
    vae_from: str | None = None  # output_dir (or codec folder) of a vae stage: take its VAE + scale_factor
    vocoder_from: str | None = None  # output_dir (or codec folder) of a vocoder stage: take its vocoder

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.token_rate not in OFFICIAL_TOKEN_RATES:
            raise ValueError(f"token_rate must be 25, 50 or 100, got {self.token_rate}.")


@dataclass
class CodecDataSection:
    """The audio corpus: ``synthetic`` or a dataset (save_to_disk folder, audio folder, hub id)."""

    dataset: str = "synthetic"
    split: str = "train"
    audio_column: str = "audio"
    max_examples: int | None = None
    synthetic_examples: int = 64
    synthetic_seconds: float = 2.0
    synthetic_seed: int = 0
    synthetic_kinds: tuple[str, ...] | None = None  # e.g. [tone, tone, sweep]: repeats weight a kind; null: all
    synthetic_detune_cents: float = 0.0  # tones off the note grid by up to this much (continuous pitch)
    synthetic_tone_grid_hz: float = 0.0  # tones snapped to multiples of this (0: off); see the vocoder stage docs
    synthetic_notes: tuple[int, int] | None = None  # MIDI range [lo, hi) of tones and chord roots; null: C3..B5
    synthetic_peak_range: tuple[float, float] | None = None  # each clip's peak drawn from [lo, hi]; null: all 0.5

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.synthetic_examples <= 0 or self.synthetic_seconds <= 0:
            raise ValueError("synthetic_examples and synthetic_seconds must be positive.")
        if self.max_examples is not None and self.max_examples <= 0:
            raise ValueError(f"max_examples must be positive or null, got {self.max_examples}.")


@dataclass
class CodecRecipeConfig:
    """One codec training run (``configs/recipes/codec/*.yaml``)."""

    task: str = "codec"
    stage: Literal["decoder", "vae", "vocoder", "semantic", "distill"] = "decoder"  # what this run trains
    codec: CodecModelSection = field(default_factory=CodecModelSection)
    data: CodecDataSection = field(default_factory=CodecDataSection)
    objective: CodecTrainingConfig = field(default_factory=CodecTrainingConfig)  # decoder stage: p_uncond, EMA
    vae: VAETrainingConfig = field(default_factory=VAETrainingConfig)  # vae stage: KL / L2 weights
    vocoder: VocoderTrainingConfig = field(default_factory=VocoderTrainingConfig)  # vocoder stage: GAN
    kmeans: SemanticStageConfig = field(default_factory=SemanticStageConfig)  # semantic stage: k-means
    distill: DistillConfig = field(default_factory=DistillConfig)  # distill stage: the few-step student
    train: CodecTrainArgs = field(default_factory=CodecTrainArgs)
    resume: bool = True

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.task != "codec":
            raise ValueError(f"task must be 'codec' in a codec recipe config, got {self.task!r}.")


def load_codec_recipe_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> CodecRecipeConfig:
    """Read and validate a codec recipe YAML (``key.subkey=value`` overrides applied first)."""
    from plumbing.config_file import load_config

    return load_config(CodecRecipeConfig, path, overrides)


def build_codec(section: CodecModelSection):
    """The codec with its decoder, in fp32 (random tiny weights, or loaded), then the VAE /
    vocoder of ``section.vae_from`` / ``section.vocoder_from`` when given."""
    codec = _base_codec(section)
    from codec.training.parts import load_decoder_part

    for part, source in (("vae", section.vae_from), ("vocoder", section.vocoder_from)):
        if source is not None:
            try:
                load_decoder_part(codec, source, part)
            except (FileNotFoundError, ValueError) as err:
                raise ValueError(f"codec.{part}_from={source!r}: {err}") from None
    return codec


def _base_codec(section: CodecModelSection):
    """The codec named by ``section.name`` (random tiny weights from ``init_seed``, or loaded)."""

    from codec.checkpoints import official_selectors
    from codec.model import SemantiCodec

    if section.name == TINY_RANDOM:
        sizes = {k: tuple(v) if isinstance(v, list) else v for k, v in section.tiny_sizes.items()}
        try:
            return SemantiCodec.tiny_random(section.token_rate, seed=section.init_seed, **sizes)
        except TypeError as err:
            raise ValueError(f"codec.tiny_sizes: {err}") from None
    # A folder fixes its rate and vocabulary: _check_loaded_sizes compares codec.token_rate with it below.
    token_rate, vocab = official_selectors(section.name, section.token_rate, section.vocab)
    codec = SemantiCodec.from_pretrained(section.name, token_rate=token_rate, semantic_vocab_size=vocab,
                                         cache_dir=section.cache_dir, load_decoder=True)
    _check_loaded_sizes(section, codec.config)
    return codec


def _check_loaded_sizes(section: CodecModelSection, config) -> None:  # noqa: ANN001 - SemantiCodecConfig
    """A loaded codec must have ``section.token_rate`` and the values of ``section.tiny_sizes``."""
    if config.token_rate != section.token_rate:
        raise ValueError(f"codec.name={section.name!r} is a {config.token_rate} tokens/s codec but codec.token_rate="
                         f"{section.token_rate}; set codec.token_rate: {config.token_rate}.")
    if not section.tiny_sizes:
        return
    if config.name.startswith("official-"):
        raise ValueError("codec.tiny_sizes applies to tiny-random and save_pretrained folders, not to official "
                         f"checkpoints ({section.name!r}); remove it.")
    unknown = sorted(k for k in section.tiny_sizes if not hasattr(config, k))
    if unknown:
        raise ValueError(f"codec.tiny_sizes: {unknown} are not SemantiCodecConfig fields.")
    differ = {k: (v, getattr(config, k)) for k, v in section.tiny_sizes.items()
              if _as_tuple(v) != _as_tuple(getattr(config, k))}
    if differ:
        listing = ", ".join(f"{k}: {want!r} in the config but {have!r} in the folder" for k, (want, have) in differ.items())
        raise ValueError(f"codec.name={section.name!r} does not have codec.tiny_sizes ({listing}); use the sizes of "
                         "the stage that wrote the folder, or remove tiny_sizes.")


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def build_windows(data: CodecDataSection, window_samples: int, min_samples: int, sample_rate: int, seed: int,
                  partial: float = 0.0):
    """:class:`ClipWindows` over the corpus; clips are decoded and resampled lazily."""
    from codec.audio import resample
    from codec.data.corpus import audio_cell_to_waveform, load_corpus
    from codec.data.synthetic import SyntheticSoundConfig
    from codec.training.windows import ClipWindows

    extra: dict[str, Any] = {"kinds": tuple(data.synthetic_kinds)} if data.synthetic_kinds else {}
    if data.synthetic_notes is not None:
        extra["notes"] = tuple(data.synthetic_notes)
    if data.synthetic_peak_range is not None:
        extra["peak_range"] = tuple(data.synthetic_peak_range)
    synthetic = SyntheticSoundConfig(num_examples=data.synthetic_examples, seconds=data.synthetic_seconds,
                                     seed=data.synthetic_seed, detune_cents=data.synthetic_detune_cents,
                                     tone_grid_hz=data.synthetic_tone_grid_hz, **extra)
    corpus = load_corpus(data.dataset, split=data.split, synthetic=synthetic, max_examples=data.max_examples)
    if data.audio_column not in corpus.column_names:
        raise ValueError(f"data.audio_column={data.audio_column!r} is not a column of the corpus {corpus.column_names}.")

    def clip(i: int):
        wave, sr = audio_cell_to_waveform(corpus[int(i)][data.audio_column], None, data.audio_column)
        return wave if sr == sample_rate else resample(wave, sr, sample_rate)

    return ClipWindows((len(corpus), clip), window_samples, min_samples, seed=seed, partial=partial)


def run_codec_recipe(config: CodecRecipeConfig) -> CodecTrainResult:
    """Run the codec recipe in this process (one of many under ``accelerate launch``)."""
    import yaml

    from codec.training.trainer import train_stage
    from plumbing.config_file import to_dict

    if not isinstance(config, CodecRecipeConfig):
        raise TypeError(f"config must be a CodecRecipeConfig, got {type(config).__name__}.")
    codec = build_codec(config.codec)
    cfg = codec.config
    window = round(config.train.window_seconds * cfg.sample_rate)
    if window > cfg.segment_samples:
        raise ValueError(f"train.window_seconds={config.train.window_seconds} exceeds the codec's segment of "
                         f"{cfg.segment_samples / cfg.sample_rate:.2f} s.")
    windows = build_windows(config.data, window, cfg.win_length, cfg.sample_rate, config.train.seed,
                            config.train.partial_windows)
    out = Path(config.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESOLVED_CONFIG_FILE).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    if config.stage == "semantic":
        return _run_semantic_stage(config, codec, windows)
    return train_stage(build_stage(config, codec), windows, config.train, resume=config.resume)


def _run_semantic_stage(config: CodecRecipeConfig, codec, windows) -> CodecTrainResult:  # noqa: ANN001
    """The ``semantic`` stage: k-means on the main process (on its GPU unless ``train.use_cpu``);
    every other process waits for it. ``history`` holds (k-means epoch, {"loss": inertia})."""
    import torch
    from accelerate import PartialState

    from codec.training.semantic_stage import fit_semantic_stage

    state = PartialState()
    out = Path(config.train.output_dir)
    result = CodecTrainResult(out, 0, codec_dir=out / "codec")
    if state.is_main_process:
        device = "cpu" if config.train.use_cpu or not torch.cuda.is_available() else state.device
        fitted = fit_semantic_stage(codec.to(device), windows, config.kmeans, out)
        result.history = [(i, {"loss": v}) for i, v in enumerate(fitted.inertia, start=1)]
        result.global_step = len(fitted.inertia)
    state.wait_for_everyone()
    return result


def build_stage(config: CodecRecipeConfig, codec):  # noqa: ANN001, ANN201 - SemantiCodec -> nn.Module
    """The training-step module of ``config.stage`` around ``codec``."""
    if config.stage == "vae":
        from codec.training.vae_stage import VAETrainingStep

        return VAETrainingStep(codec, config.vae)
    if config.stage == "vocoder":
        from codec.training.vocoder_stage import VocoderTrainingStep

        return VocoderTrainingStep(codec, config.vocoder, init_seed=config.train.seed)
    if config.stage == "distill":
        from codec.training.distill_stage import DistillTrainingStep

        return DistillTrainingStep(codec, config.distill)
    from codec.training.losses import CodecTrainingStep

    return CodecTrainingStep(codec, config.objective)
