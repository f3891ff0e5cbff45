"""Typed configuration of a SemantiCodec variant, with presets for the official models.

Everything that model code needs to know about sizes lives here, as fields or derived
properties, so that no module hard-codes a magic number of the official implementation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16000
OFFICIAL_TOKEN_RATES = (25, 50, 100)
OFFICIAL_VOCAB_SIZES = (4096, 8192, 16384, 32768)
OFFICIAL_REPO = "haoheliu/SemantiCodec"  # hub repository of the official checkpoints
TINY = "tiny"  # the small trained codec shipped in the package (codec/pretrained/tiny)
TINY_RANDOM = "tiny-random"  # the tiny configuration with random weights from a fixed seed


@dataclass
class SemantiCodecConfig:
    """Sizes and constants of one SemantiCodec variant.

    ``token_rate`` counts both streams (semantic + acoustic) per second, as the paper does:
    a variant at 100 tokens/s produces 50 frames per second, each one semantic and one
    acoustic id.
    """

    token_rate: int = 100
    # Name of the official variant's semantic vocabulary (selects the centroid file).
    semantic_vocab_size: int = 16384
    # Rows of the semantic centroid table = the real range of semantic ids. The paper's
    # vocabulary V is the default; the official config maps V to a file named
    # ``codebook_{V/2}_0.npy`` whose row count is not documented, so loading a table always
    # overwrites this with the table's row count.
    semantic_codebook_size: int | None = None
    acoustic_codebook_size: int = 8192

    # Front end (Kaldi fbank on 16 kHz audio).
    sample_rate: int = SAMPLE_RATE
    n_mels: int = 128
    segment_frames: int = 1024  # fbank frames per 10.24 s segment
    frame_shift_ms: float = 10.0
    frame_length_ms: float = 25.0
    fbank_mean: float = -4.2677393
    fbank_std: float = 4.5689974

    # AudioMAE (ViT-B/16 on a 1024 x 128 fbank image).
    mae_dim: int = 768
    mae_depth: int = 12
    mae_heads: int = 12
    mae_mlp_ratio: float = 4.0
    mae_patch: int = 16
    mae_norm_eps: float = 1e-6
    # Blocks (0-based) whose final-LayerNorm outputs are averaged into the features.
    mae_feature_layers: tuple[int, ...] = (9, 10, 11)

    # Acoustic residual encoder: bidirectional LSTM; None picks the official depth.
    lstm_layers: int | None = None

    # Decoder (latent diffusion); read by the decoder modules.
    positional_dim: int = 192
    latent_channels: int = 8
    latent_time: int = 256
    latent_freq: int = 16
    unet_block_channels: tuple[int, ...] = (64, 128, 192, 320)
    unet_layers_per_block: int = 2
    unet_head_channels: int = 32
    unet_norm_groups: int = 32
    vae_block_channels: tuple[int, ...] = (128, 256, 512)
    vae_layers_per_block: int = 2
    vae_norm_groups: int = 32
    vae_mel_bins: int = 64
    vocoder_upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    vocoder_upsample_kernels: tuple[int, ...] = (16, 16, 8, 4, 4)
    vocoder_initial_channels: int = 1024
    vocoder_resblock_kernels: tuple[int, ...] = (3, 7, 11)
    vocoder_resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    diffusion_steps_train: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0195
    window_overlap: float = 0.0625
    cfg_scale: float = 2.0

    # Free-form provenance (e.g. "official", "tiny-random"); saved with the weights.
    name: str = "custom"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.token_rate not in OFFICIAL_TOKEN_RATES:
            raise ValueError(
                f"token_rate={self.token_rate!r} is not supported; use one of {OFFICIAL_TOKEN_RATES} "
                "(tokens per second, semantic and acoustic counted together)."
            )
        if self.semantic_vocab_size <= 0:
            raise ValueError(f"semantic_vocab_size must be positive, got {self.semantic_vocab_size}.")
        if self.semantic_codebook_size is None:
            self.semantic_codebook_size = self.semantic_vocab_size
        if self.semantic_codebook_size <= 0 or self.acoustic_codebook_size <= 0:
            raise ValueError("codebook sizes must be positive.")
        if self.lstm_layers is None:
            self.lstm_layers = {100: 4, 50: 3, 25: 2}[self.token_rate]
        if self.mae_dim % self.mae_heads:
            raise ValueError(f"mae_dim={self.mae_dim} must be divisible by mae_heads={self.mae_heads}.")
        if self.segment_frames % self.mae_patch or self.n_mels % self.mae_patch:
            raise ValueError("segment_frames and n_mels must be multiples of mae_patch.")
        if self.mae_grid_freq % 2 and self.stack_factor > 1:
            raise ValueError("patch stacking needs an even number of frequency patches.")
        if any(i < 0 or i >= self.mae_depth for i in self.mae_feature_layers):
            raise ValueError(f"mae_feature_layers={self.mae_feature_layers} must index blocks 0..{self.mae_depth - 1}.")
        # JSON round trips give lists; keep tuples so that configs compare equal.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, _to_tuple(value))

    # ----- derived sizes ---------------------------------------------------------------
    @property
    def stack_factor(self) -> int:
        """K: AudioMAE patches stacked into one token frame (1, 2 or 4)."""
        return 100 // self.token_rate

    @property
    def frame_rate(self) -> float:
        """Token frames per second (each frame = one semantic + one acoustic id)."""
        return self.token_rate / 2

    @property
    def hop_length(self) -> int:
        """Fbank hop in samples."""
        return int(round(self.sample_rate * self.frame_shift_ms / 1000))

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.frame_length_ms / 1000))

    @property
    def segment_samples(self) -> int:
        """Samples per encoder segment (10.24 s at 16 kHz)."""
        return self.segment_frames * self.hop_length

    @property
    def patch_samples(self) -> int:
        """Samples covered by one AudioMAE patch along time (0.16 s)."""
        return self.mae_patch * self.hop_length

    @property
    def mae_grid_time(self) -> int:
        return self.segment_frames // self.mae_patch

    @property
    def mae_grid_freq(self) -> int:
        return self.n_mels // self.mae_patch

    @property
    def tokens_per_segment(self) -> int:
        """P: token frames per 10.24 s segment (512 / K)."""
        return self.mae_grid_time * self.mae_grid_freq // self.stack_factor

    @property
    def feature_dim(self) -> int:
        """D: dimension of one stacked semantic feature (mae_dim * K)."""
        return self.mae_dim * self.stack_factor

    @property
    def context_dim(self) -> int:
        """Cross-attention context of the UNet: acoustic + semantic features + position."""
        return 2 * self.feature_dim + self.positional_dim

    @property
    def window_tokens(self) -> int:
        """Token frames per decoder window (one segment)."""
        return self.tokens_per_segment

    @property
    def window_overlap_tokens(self) -> int:
        return int(self.window_tokens * self.window_overlap)

    @property
    def window_overlap_samples(self) -> int:
        return int(self.segment_samples * self.window_overlap)

    @property
    def bitrate(self) -> float:
        """Bits per second of the token streams."""
        bits = math.log2(self.semantic_codebook_size) + math.log2(self.acoustic_codebook_size)
        return self.frame_rate * bits

    def num_frames(self, num_samples: int) -> int:
        """Token frames the official code keeps for ``num_samples`` of 16 kHz audio.

        The duration is rounded up to the next multiple of 0.16 s (a whole patch is added
        when it already is one), exactly as the official ``load_audio`` does.
        """
        duration = num_samples / self.sample_rate
        patch = self.patch_samples / self.sample_rate
        duration = duration + (patch - duration % patch)
        return math.ceil(8 * duration / patch / self.stack_factor)

    def num_samples(self, num_frames: int) -> int:
        """Waveform samples the official decoder returns for ``num_frames`` token frames."""
        trim = (num_frames / 8) * 16 * 0.01 * self.stack_factor
        return int(trim * self.sample_rate)

    # ----- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SemantiCodecConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SemantiCodecConfig keys {unknown}; known keys are {sorted(known)}.")
        return cls(**data)

    def to_json_file(self, path: str | Path) -> None:
        """Write the config as JSON, atomically (temporary name, then rename)."""
        from plumbing.io import write_json

        write_json(path, self.to_dict())

    @classmethod
    def from_json_file(cls, path: str | Path) -> SemantiCodecConfig:
        """Read a config written by ``to_json_file``; a clear ``ValueError`` for a damaged file."""
        from plumbing.io import read_json_object

        return cls.from_dict(read_json_object(path, "codec config", "save the codec again with save_pretrained"))

    # ----- presets ---------------------------------------------------------------------
    @classmethod
    def official(cls, token_rate: int = 100, semantic_vocab_size: int = 16384, **overrides: Any) -> SemantiCodecConfig:
        """The official variant (token_rate 25/50/100 x vocabulary 4096..32768)."""
        if semantic_vocab_size not in OFFICIAL_VOCAB_SIZES:
            raise ValueError(
                f"semantic_vocab_size={semantic_vocab_size!r} has no official checkpoint; "
                f"use one of {OFFICIAL_VOCAB_SIZES}."
            )
        name = f"official-r{token_rate}-v{semantic_vocab_size}"
        return cls(token_rate=token_rate, semantic_vocab_size=semantic_vocab_size, name=name, **overrides)

    @classmethod
    def tiny(cls, token_rate: int = 100, semantic_vocab_size: int = 64, **overrides: Any) -> SemantiCodecConfig:
        """A small variant with the official structure, for fast tests and toy training."""
        sizes: dict[str, Any] = dict(
            semantic_codebook_size=semantic_vocab_size,
            acoustic_codebook_size=64,
            mae_dim=32,
            mae_depth=3,
            mae_heads=2,
            mae_feature_layers=(1, 2),
            lstm_layers=1,
            positional_dim=16,
            unet_block_channels=(32, 32, 32, 32),
            unet_layers_per_block=1,
            unet_head_channels=16,
            vae_block_channels=(32, 32, 32),
            vae_layers_per_block=1,
            vocoder_initial_channels=32,
            name=f"tiny-r{token_rate}",
        )
        sizes.update(overrides)
        return cls(token_rate=token_rate, semantic_vocab_size=semantic_vocab_size, **sizes)

    def official_centroid_file(self) -> str:
        """Path of the semantic centroid table inside the official hub repository."""
        folder = {100: 512, 50: 256, 25: 128}[self.token_rate]
        return (
            f"codebook_idx/combine_{folder}_audioset_dominate/codebook_{self.semantic_vocab_size // 2}_0.npy"
        )

    def official_checkpoint_folder(self) -> str:
        return f"semanticodec_tokenrate_{self.token_rate}"


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value
