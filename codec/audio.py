"""Audio front end: read files, mix to mono, resample to 16 kHz, validate waveforms.

Only soundfile and torch are used (torchaudio is optional, see DESIGN.md s.3). The
resampler reproduces torchaudio's default band-limited sinc interpolation (Hann window,
6 zero crossings, roll-off 0.99), batched and on any device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MONO_MODES = ("first", "mean")


def load_audio(path: str | Path, mono: str = "first") -> tuple[torch.Tensor, int]:
    """Read an audio file (wav, flac, ogg, ...) as a float32 mono waveform.

    Integer PCM is scaled to [-1, 1). Multi-channel files keep the first channel, as the
    official SemantiCodec does; ``mono="mean"`` averages the channels instead.

    Returns (waveform FloatTensor[N], sample_rate).
    """
    import soundfile as sf

    if mono not in MONO_MODES:
        raise ValueError(f"mono={mono!r} is not supported; use one of {MONO_MODES}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; pass an audio file (wav, flac, ogg).")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own LibsndfileError / RuntimeError
        raise ValueError(
            f"could not read audio file {str(path)!r}: {err}. Supported formats are those of "
            "libsndfile (wav, flac, ogg/vorbis, mp3 with a recent libsndfile)."
        ) from err
    wave = torch.from_numpy(np.ascontiguousarray(data.T))  # [channels, N]
    return to_mono(wave, mono), int(sample_rate)


def to_mono(wave: torch.Tensor, mode: str = "first") -> torch.Tensor:
    """[channels, N] -> [N]: first channel (official behaviour) or the channel mean."""
    if wave.dim() == 1:
        return wave
    if wave.dim() != 2:
        raise ValueError(f"expected a [channels, samples] waveform, got shape {tuple(wave.shape)}.")
    if mode == "first":
        return wave[0]
    if mode == "mean":
        return wave.mean(dim=0)
    raise ValueError(f"mono={mode!r} is not supported; use one of {MONO_MODES}.")


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, width_zero_crossings: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Polyphase sinc kernel [new, 1, taps] and its half-width, computed in float64."""
    base = min(orig, new) * rolloff
    width = math.ceil(width_zero_crossings * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t = (t * base).clamp(-width_zero_crossings, width_zero_crossings)
    window = torch.cos(t * math.pi / width_zero_crossings / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return sinc * window * (base / orig), width


def resample(
    wave: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> torch.Tensor:
    """Resample the last axis of ``wave`` from ``orig_freq`` to ``new_freq`` Hz.

    Same algorithm and output length (ceil(N * new / orig)) as torchaudio's default
    ``functional.resample``; any leading batch shape; runs where ``wave`` lives.
    """
    if not (isinstance(orig_freq, int) and isinstance(new_freq, int)) or orig_freq <= 0 or new_freq <= 0:
        raise ValueError(
            f"sample rates must be positive integers, got orig_freq={orig_freq!r}, new_freq={new_freq!r}."
        )
    if not wave.is_floating_point():
        raise TypeError(f"resample needs a floating-point waveform, got {wave.dtype}.")
    if orig_freq == new_freq:
        return wave
    g = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // g, new_freq // g
    kernel, width = _sinc_kernel(orig, new, lowpass_filter_width, rolloff)
    kernel = kernel.to(device=wave.device, dtype=wave.dtype)
    shape = wave.shape
    flat = wave.reshape(-1, shape[-1])
    length = flat.shape[-1]
    padded = F.pad(flat, (width, width + orig))
    out = F.conv1d(padded[:, None], kernel, stride=orig)  # [B, new, L']
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    target = math.ceil(new * length / orig)
    return out[:, :target].reshape(*shape[:-1], -1)


def check_waveform(wave: torch.Tensor, name: str = "audio", min_samples: int = 1) -> None:
    """Raise a clear error for waveforms the codec cannot encode meaningfully."""
    if not isinstance(wave, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(wave).__name__}.")
    if not wave.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point waveform in [-1, 1], got dtype {wave.dtype}; "
            "convert integer PCM with wave.float() / 32768 (int16) or use codec.audio.load_audio."
        )
    if wave.dim() != 1:
        raise ValueError(f"{name} must be a 1-D waveform [samples], got shape {tuple(wave.shape)}.")
    if wave.numel() < min_samples:
        raise ValueError(
            f"{name} has {wave.numel()} samples; at least {min_samples} are needed "
            f"(the fbank needs one 25 ms window)."
        )
    if not torch.isfinite(wave).all():
        bad = int((~torch.isfinite(wave)).sum())
        raise ValueError(f"{name} contains {bad} NaN or Inf samples; clean or clip the audio first.")


def as_waveform_list(
    audio: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    lengths: torch.Tensor | Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Normalise the accepted batch forms to a list of 1-D float tensors.

    Accepted: a 1-D tensor (one clip), a list of 1-D tensors/arrays (clips of any length),
    or a padded 2-D tensor [B, N] with optional ``lengths`` [B].
    """
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(audio)
    if isinstance(audio, torch.Tensor):
        if audio.dim() == 1:
            if lengths is not None:
                raise ValueError("lengths is only meaningful with a padded [B, N] batch.")
            return [audio]
        if audio.dim() != 2:
            raise ValueError(
                f"audio must be [samples], [batch, samples] or a list of 1-D clips; got shape {tuple(audio.shape)}."
            )
        if lengths is None:
            return list(audio)
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.numel() != audio.shape[0]:
            raise ValueError(f"lengths must have one entry per clip ({audio.shape[0]}), got {tuple(lengths.shape)}.")
        if (lengths < 0).any() or (lengths > audio.shape[1]).any():
            raise ValueError(f"lengths must lie in [0, {audio.shape[1]}], got {lengths.tolist()}.")
        return [a[: int(n)] for a, n in zip(audio, lengths)]
    if isinstance(audio, (list, tuple)):
        if lengths is not None:
            raise ValueError("lengths is only meaningful with a padded [B, N] tensor, not a list of clips.")
        if len(audio) == 0:
            raise ValueError("audio is an empty list; pass at least one clip.")
        return [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in audio]
    raise TypeError(
        f"audio must be a torch.Tensor, numpy array or a list of them, got {type(audio).__name__}."
    )
