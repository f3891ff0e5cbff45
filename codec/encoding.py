"""The encoding pipeline of :class:`codec.model.SemantiCodec`, step by step.

Per clip it follows the official computation (padding to whole 10.24 s segments, per-clip mean
removal in the fbank, padding mask, token trimming), but every segment of every clip of a call
goes through AudioMAE and the LSTM together, in batches of ``batch_size`` segments:

1. :func:`group_clips`: consecutive clips whose segments fill at most one batch;
2. :func:`fbank_segments`: the normalised Kaldi fbank of every segment of a group;
3. :func:`encode_segments`: AudioMAE -> semantic k-means ids -> LSTM -> acoustic VQ ids,
   with :func:`valid_token_frames` telling the LSTM where each segment's padding starts;
4. :func:`encode_clips` trims each clip's tokens to its duration and :func:`pad_tokens`
   batches them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import torch

from codec.fbank import kaldi_fbank
from codec.outputs import EncodeOutput
from codec.semantic import stack_patches
from plumbing.io import pad_stack

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from codec.config import SemantiCodecConfig

__all__ = [
    "SegmentEncoding",
    "encode_clips",
    "encode_segments",
    "fbank_segments",
    "group_clips",
    "num_segments",
    "pad_tokens",
    "valid_token_frames",
]

EMPTY_FRAME_STD = 1e-7  # official threshold for "padding" fbank frames


@dataclass
class SegmentEncoding:
    """Per-segment encoder results (N segments of 10.24 s, P token frames each).

    semantic:  LongTensor[N, P]
    acoustic:  LongTensor[N, P]
    valid_frames: LongTensor[N]; token frames before the segment's padding cutoff.
    mae_features: FloatTensor[N, 513, mae_dim] (cls first), only with ``return_intermediates``.
    stacked:   FloatTensor[N, P, D], only with ``return_intermediates``.
    pre_quant: FloatTensor[N, P, D] (acoustic VQ input), only with ``return_intermediates``.
    """

    semantic: torch.Tensor
    acoustic: torch.Tensor
    valid_frames: torch.Tensor
    mae_features: torch.Tensor | None = None
    stacked: torch.Tensor | None = None
    pre_quant: torch.Tensor | None = None

    @classmethod
    def concatenate(cls, parts: list[SegmentEncoding]) -> SegmentEncoding:
        """The results of consecutive batches of segments as one."""
        joined = {}
        for field in fields(cls):
            values = [getattr(p, field.name) for p in parts]
            joined[field.name] = None if values[0] is None else torch.cat(values)
        return cls(**joined)


def num_segments(num_samples: int, config: SemantiCodecConfig) -> int:
    """10.24 s segments of a clip of ``num_samples``: the official front end always appends
    zeros, a whole segment when the length is already a multiple of the segment."""
    return num_samples // config.segment_samples + 1


def group_clips(clips: list[torch.Tensor], batch_size: int, config: SemantiCodecConfig) -> Iterator[list[int]]:
    """Indices of consecutive clips whose segments fill at most ``batch_size`` (one clip at least)."""
    group: list[int] = []
    used = 0
    for i, clip in enumerate(clips):
        n = num_segments(clip.numel(), config)
        if group and used + n > batch_size:
            yield group
            group, used = [], 0
        group.append(i)
        used += n
    if group:
        yield group


def fbank_segments(
    clips: list[torch.Tensor], config: SemantiCodecConfig, device: torch.device
) -> tuple[torch.Tensor, list[int]]:
    """16 kHz clips -> (normalised fbank of all segments [sum S_b, 1024, 128] on ``device``, [S_b]).

    Each clip is padded as the official front end does and gets its own mean removed.
    """
    segments = [num_segments(c.numel(), config) for c in clips]
    padded_len = [s * config.segment_samples for s in segments]
    waves = torch.zeros(len(clips), max(padded_len), device=device)
    for i, clip in enumerate(clips):
        waves[i, : clip.numel()] = clip.to(device)
    lengths = torch.tensor(padded_len, device=device)
    signal = torch.tensor([c.numel() for c in clips], device=device)
    fbank = kaldi_fbank(waves, lengths, config, num_frames=max(segments) * config.segment_frames, signal_lengths=signal)
    fbank = fbank.reshape(len(clips), max(segments), config.segment_frames, config.n_mels)
    return torch.cat([fbank[i, :s] for i, s in enumerate(segments)]), segments


def valid_token_frames(fbank: torch.Tensor, config: SemantiCodecConfig) -> torch.Tensor:
    """Token frames before each segment's padding cutoff, as the official mask computes it.

    Frames whose std over mel bins is <= 1e-7 are empty; the cutoff is after the last
    non-empty frame; token frames from ceil(P * cutoff / 1024) on are padding.
    """
    nonempty = fbank.float().std(dim=-1) > EMPTY_FRAME_STD  # [N, 1024]
    position = torch.arange(1, fbank.shape[1] + 1, device=fbank.device)
    last = (position * nonempty).amax(dim=-1)  # 0 when every frame is empty
    tokens = config.tokens_per_segment
    return torch.div(tokens * last + fbank.shape[1] - 1, fbank.shape[1], rounding_mode="floor")


def encode_segments(codec: nn.Module, fbank: torch.Tensor, keep: bool) -> SegmentEncoding:
    """One batch of normalised fbank segments [N, 1024, 128] through the encoder modules of
    ``codec`` (a :class:`codec.model.SemantiCodec`); ``keep`` also returns the intermediate
    features (as float32)."""
    valid = valid_token_frames(fbank, codec.config)
    features = codec.audiomae(fbank)
    stacked = stack_patches(features, codec.config)
    semantic = codec.semantic.quantize(stacked)
    lstm_in = torch.cat([stacked, codec.semantic.embed(semantic).to(stacked.dtype)], dim=-1)
    pre_quant = codec.acoustic(lstm_in, valid)
    acoustic = codec.acoustic.quantize(pre_quant)
    if not keep:
        return SegmentEncoding(semantic, acoustic, valid)
    return SegmentEncoding(semantic, acoustic, valid, features.float(), stacked.float(), pre_quant.float())


def encode_clips(codec: nn.Module, clips: list[torch.Tensor], batch_size: int, bar: Any | None = None) -> list[torch.Tensor]:
    """Token frames [T_b, 2] (semantic, acoustic) of each 16 kHz clip, trimmed to its duration;
    ``bar`` (``plumbing.progress``) advances by the segments of each forward."""
    fbank, segments = fbank_segments(clips, codec.config, codec.device)
    enc = codec.encode_fbank(fbank, batch_size=batch_size, bar=bar)
    out = []
    start = 0
    for clip, n_seg in zip(clips, segments):
        sem = enc.semantic[start : start + n_seg].reshape(-1)
        aco = enc.acoustic[start : start + n_seg].reshape(-1)
        start += n_seg
        n = codec.config.num_frames(clip.numel())
        out.append(torch.stack([sem[:n], aco[:n]], dim=-1))
    return out


def pad_tokens(per_clip: list[torch.Tensor]) -> EncodeOutput:
    """Clips' token frames [T_b, 2] -> EncodeOutput(tokens [B, max T_b, 2] zero-padded, lengths [B])."""
    tokens, lengths = pad_stack(per_clip)
    return EncodeOutput(tokens=tokens, lengths=lengths)
