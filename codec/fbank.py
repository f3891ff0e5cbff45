"""Kaldi-compatible log-mel filterbank, batched and device-agnostic.

Reproduces ``torchaudio.compliance.kaldi.fbank`` with the options SemantiCodec uses
(htk_compat, no dither, Hann window, 25 ms / 10 ms, 128 bins, snip_edges, DC removal,
pre-emphasis 0.97, power spectrum, 512-point FFT, mel bins 20 Hz .. Nyquist), and the
official normalisation ``(fbank - mean) / (2 * std)``. Verified against fixtures recorded
with torchaudio (tests/codec/test_encoder_parity.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from codec.config import SemantiCodecConfig

_EPS = torch.finfo(torch.float32).eps
_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0


def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


@lru_cache(maxsize=8)
def mel_filterbank(num_bins: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    """Kaldi triangular mel filters [num_bins, n_fft // 2 + 1] (last FFT bin gets weight 0).

    Computed in float32 like Kaldi / torchaudio so that the fbank matches bit-for-bit
    as far as the arithmetic order allows.
    """
    nyquist = 0.5 * sample_rate
    n_half = n_fft // 2
    bin_width = sample_rate / n_fft
    mel_low, mel_high = _mel(_LOW_FREQ), _mel(nyquist)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + b * delta
    center = mel_low + (b + 1.0) * delta
    right = mel_low + (b + 2.0) * delta
    mel = _mel(bin_width * torch.arange(n_half)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))
    return F.pad(banks, (0, 1))


def num_fbank_frames(num_samples: int, config: SemantiCodecConfig) -> int:
    """Frames Kaldi produces for ``num_samples`` with snip_edges=True."""
    if num_samples < config.win_length:
        return 0
    return 1 + (num_samples - config.win_length) // config.hop_length


def kaldi_fbank(
    waves: torch.Tensor,
    lengths: torch.Tensor | None,
    config: SemantiCodecConfig,
    num_frames: int | None = None,
    signal_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalised log-mel fbank of a batch of waveforms.

    waves:   FloatTensor[B, N] (clips shorter than N are zero-padded after ``lengths``).
    lengths: LongTensor[B] valid samples per clip (None: all N). Each clip has its own mean
             removed over its own length, as the official code does per file.
    num_frames: frames to return (zero-padded / cut, as the official ``target_length``);
             default: the frames of the longest clip.
    signal_lengths: LongTensor[B] or None: where each clip's own samples end and the zeros it was
             padded with begin (the official padding to whole segments). Frames wholly inside
             those zeros are all alike, so one of them is computed and copied to the others.
    Returns FloatTensor[B, num_frames, n_mels]; frames past a clip's own frame count hold
    the normalised value of an all-zero fbank row, exactly like the official padding.
    """
    if waves.dim() != 2:
        raise ValueError(f"waves must be [batch, samples], got shape {tuple(waves.shape)}.")
    B, N = waves.shape
    device = waves.device
    x = waves.float()
    if lengths is None:
        lengths = torch.full((B,), N, dtype=torch.long, device=device)
    lengths = lengths.to(device)
    valid = torch.arange(N, device=device)[None, :] < lengths[:, None]
    mean = (x * valid).sum(-1, keepdim=True) / lengths.clamp(min=1)[:, None].to(x.dtype)
    x = (x - mean) * valid

    win, hop = config.win_length, config.hop_length
    n_fft = 1 << (win - 1).bit_length()
    frames_per_clip = torch.div(lengths - win, hop, rounding_mode="floor") + 1
    frames_per_clip = frames_per_clip.clamp(min=0)
    max_frames = num_fbank_frames(N, config)
    if num_frames is None:
        num_frames = int(frames_per_clip.max())
    out = torch.zeros(B, num_frames, config.n_mels, device=device)
    if max_frames > 0:
        frames = x.unfold(-1, win, hop)  # [B, M, win]
        if signal_lengths is not None:  # frame i lies wholly in the padding when i * hop >= the signal's end
            first_silent = torch.div(signal_lengths.to(device) + hop - 1, hop, rounding_mode="floor")
            frames = frames[:, : min(max_frames, int(first_silent.max()) + 1)]
        frames = frames - frames.mean(-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - _PREEMPHASIS * previous
        frames = frames * torch.hann_window(win, periodic=False, device=device, dtype=frames.dtype)
        spectrum = torch.fft.rfft(frames, n=n_fft)
        power = spectrum.real.square() + spectrum.imag.square()  # |X|^2 without abs()'s square root
        banks = mel_filterbank(config.n_mels, n_fft, config.sample_rate).to(device=device, dtype=power.dtype)
        logmel = torch.matmul(power, banks.T).clamp(min=_EPS).log()
        if signal_lengths is not None:  # every later frame of a clip copies its first silent one
            source = torch.minimum(torch.arange(max_frames, device=device)[None, :], first_silent[:, None])
            logmel = logmel.gather(1, source[..., None].expand(-1, -1, logmel.shape[-1]))
        keep = torch.arange(max_frames, device=device)[None, :] < frames_per_clip[:, None]
        logmel = logmel * keep[..., None]
        n = min(num_frames, max_frames)
        out[:, :n] = logmel[:, :n]
    return (out - config.fbank_mean) / (config.fbank_std * 2)
