"""Audio front end: read files, mix to mono, resample to 16 kHz, validate waveforms.

Only soundfile and torch are used (torchaudio is optional, see docs/architecture.md, s.6). The
resampler reproduces torchaudio's default band-limited sinc interpolation (Hann window,
6 zero crossings, roll-off 0.99), batched and on any device.

What the codec accepts as audio (:func:`as_waveform_list`, the one place that decides it):

* a 1-D tensor or array: one mono clip;
* a list (or tuple) of clips: each item is one clip, 1-D, or 2-D with its channels on the short
  axis (``[channels, samples]`` as torchaudio loads, or ``[samples, channels]`` as soundfile
  loads; at most :data:`MAX_CHANNELS`), mixed to mono by the ``mono`` rule;
* a 2-D tensor or array ``[B, N]`` with ``lengths``: a zero-padded batch of B mono clips;
* a 2-D tensor or array without ``lengths``: ``[N, C]`` with C <= 8 < N is one multi-channel
  clip; ``[1, N]`` one mono clip; ``[B, N]`` with B > 8 a batch of mono clips. ``[C, N]`` with
  2 <= C <= 8 is refused: it may be one C-channel clip or C mono clips, and a wrong guess gives
  wrong tokens silently; the error says how to pass either.

The ``mono`` rule: ``"first"`` keeps the first channel (what the official SemantiCodec does),
``"mean"`` averages the channels. Input samples beyond [-1, 1] and files shorter than their
header says are warned about (:class:`AudioWarning`); empty, non-finite and too-short clips are
errors naming the clip.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MONO_MODES = ("first", "mean")
MAX_CHANNELS = 8  # more than this on the short axis of a 2-D clip is not a channel axis
READABLE_FORMATS = ("soundfile (libsndfile) reads wav, flac, ogg (vorbis, opus), mp3, aiff, caf, au and w64; "
                    "convert other formats (m4a, aac, wma, webm, ...) first, e.g. ffmpeg -i IN.m4a OUT.flac")
# libsndfile notes a data chunk that the file does not hold whole as "data : 32000 (should be 15978)".
_TRUNCATED_CHUNK = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


class AudioWarning(UserWarning):
    """Audio the codec can encode but that is probably not what the caller meant (clipping, truncation)."""


def load_audio(path: str | Path, mono: str = "first") -> tuple[torch.Tensor, int]:
    """Read an audio file (wav, flac, ogg, ...) as a float32 mono waveform.

    Integer PCM is scaled to [-1, 1). Multi-channel files keep the first channel, as the
    official SemantiCodec does; ``mono="mean"`` averages the channels instead. A file that holds
    fewer samples than its header announces (a cut-off download or copy) is read as far as it
    goes, with an :class:`AudioWarning`.

    Returns (waveform FloatTensor[N], sample_rate).
    """
    import soundfile as sf

    check_mono(mono)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; pass an audio file (wav, flac, ogg).")
    try:
        with sf.SoundFile(str(path)) as f:
            announced, sample_rate, notes = f.frames, f.samplerate, f.extra_info
            data = f.read(dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own LibsndfileError / RuntimeError
        raise ValueError(f"could not read audio file {str(path)!r}: {str(err).rstrip('.')}. {READABLE_FORMATS}.") from err
    _warn_if_truncated(path, data.shape[0], announced, int(sample_rate), notes)
    wave = torch.from_numpy(np.ascontiguousarray(data.T))  # [channels, N]
    return to_mono(wave, mono), int(sample_rate)


def probe_audio(path: str | Path) -> tuple[int, int]:
    """(frames, sample rate) from an audio file's header, without reading the samples; the errors of
    :func:`load_audio` for a missing or unreadable file, and a ``ValueError`` for an empty one."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist.")
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise ValueError(f"could not read audio file {str(path)!r}: {str(err).rstrip('.')}. {READABLE_FORMATS}.") from err
    if info.frames <= 0:
        raise ValueError(f"audio file {str(path)!r} is empty (0 samples): there is nothing to encode.")
    return int(info.frames), int(info.samplerate)


def _warn_if_truncated(path: Path, frames: int, announced: int, sample_rate: int, notes: str) -> None:
    chunk = _TRUNCATED_CHUNK.search(notes or "")
    if chunk is not None and int(chunk.group(3)) < int(chunk.group(2)):
        said = f"the header announces {chunk.group(2)} bytes of audio, the file holds {chunk.group(3)}"
    elif frames < announced:
        said = f"the header announces {announced} frames"
    else:
        return
    warnings.warn(
        f"audio file {str(path)!r} is shorter than its header says ({said}; {frames} frames = "
        f"{frames / sample_rate:.2f} s are there): the file is probably cut off; encoding what it holds.",
        AudioWarning, stacklevel=3,
    )


def check_mono(mono: str) -> str:
    if mono not in MONO_MODES:
        raise ValueError(f"mono={mono!r} is not supported; use one of {MONO_MODES}.")
    return mono


def to_mono(wave: torch.Tensor, mode: str = "first") -> torch.Tensor:
    """[channels, N] -> [N]: first channel (official behaviour) or the channel mean."""
    check_mono(mode)
    if wave.dim() == 1:
        return wave
    if wave.dim() != 2:
        raise ValueError(f"expected a [channels, samples] waveform, got shape {tuple(wave.shape)}.")
    return wave[0] if mode == "first" else wave.mean(dim=0)


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
    target = resampled_length(length, orig, new)
    return out[:, :target].reshape(*shape[:-1], -1)


def resampled_length(num_samples: int, orig_freq: int, new_freq: int) -> int:
    """Samples :func:`resample` returns for ``num_samples`` at ``orig_freq``: ceil(N * new / orig)."""
    g = math.gcd(orig_freq, new_freq)
    return math.ceil((new_freq // g) * num_samples / (orig_freq // g))


def check_waveform(wave: torch.Tensor, name: str = "audio", min_samples: int = 1) -> None:
    """Raise a clear error naming ``name`` for a waveform the codec cannot encode meaningfully."""
    if not isinstance(wave, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(wave).__name__}.")
    if not wave.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point waveform in [-1, 1], got dtype {wave.dtype}; "
            "convert integer PCM with wave.float() / 32768 (int16) or use codec.audio.load_audio."
        )
    if wave.dim() != 1:
        raise ValueError(f"{name} must be a 1-D waveform [samples], got shape {tuple(wave.shape)}.")
    if wave.numel() == 0:
        raise ValueError(f"{name} is empty (0 samples): there is nothing to encode.")
    if wave.numel() < min_samples:
        raise ValueError(f"{name} has {wave.numel()} samples; at least {min_samples} are needed (one fbank window).")
    if not torch.isfinite(wave).all():
        bad = int((~torch.isfinite(wave)).sum())
        raise ValueError(f"{name} contains {bad} NaN or Inf samples; clean or clip the audio first.")


def clipping_message(wave: torch.Tensor, name: str = "audio") -> str | None:
    """What is wrong when ``wave`` has samples beyond [-1, 1] (clipped, or not scaled); None when nothing is."""
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    if not peak > 1.0:
        return None
    over = int((wave.abs() > 1.0).sum())
    return (f"{name} has {over} samples beyond [-1, 1] (peak {peak:.3g}): the codec expects float audio in "
            "[-1, 1]; scale it (e.g. divide by the peak, or integer PCM by 32768) unless the overshoot is meant.")


def warn_if_clipping(wave: torch.Tensor, name: str = "audio") -> None:
    """An :class:`AudioWarning` when ``wave`` has samples beyond [-1, 1] (clipped, or not scaled)."""
    message = clipping_message(wave, name)
    if message is not None:
        warnings.warn(message, AudioWarning, stacklevel=4)


def _as_tensor(value: object, name: str) -> object:
    """A numpy array as a tensor (native byte order, writable); anything else as it is."""
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a numeric array, got numpy dtype {value.dtype}.")
    value = np.ascontiguousarray(value.astype(value.dtype.newbyteorder("="), copy=False))
    return torch.from_numpy(value if value.flags.writeable else value.copy())


def _one_clip(item: object, name: str, mono: str) -> object:
    """One clip of a list: 1-D as it is, 2-D (channels on the short axis) mixed to mono."""
    item = _as_tensor(item, name)
    if not isinstance(item, torch.Tensor) or item.dim() != 2:
        return item
    channels_first = item.shape[0] <= item.shape[1]
    if min(item.shape) > MAX_CHANNELS:
        raise ValueError(
            f"{name} has shape {tuple(item.shape)}: a clip is [samples], [channels, samples] or [samples, channels] "
            f"with at most {MAX_CHANNELS} channels; pass a batch of clips as a list of 1-D clips."
        )
    return to_mono(item if channels_first else item.T, mono)


def _ambiguous(shape: tuple[int, ...], mono: str) -> ValueError:
    rows = shape[0]
    return ValueError(
        f"audio has shape {shape}: one clip with {rows} channels ([channels, samples], as torchaudio loads it) or "
        f"a batch of {rows} mono clips? The codec does not guess. Pass one multi-channel clip inside a list "
        f"([audio], mixed to mono by mono={mono!r}), or a batch of mono clips as a list (list(audio)) or as "
        "a padded tensor with lengths=[...]."
    )


def as_waveform_list(
    audio: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    lengths: torch.Tensor | Sequence[int] | None = None,
    mono: str = "first",
) -> list[torch.Tensor]:
    """Normalise the accepted audio forms (module docstring) to a list of 1-D clips.

    Multi-channel clips are mixed to mono by ``mono`` ("first" or "mean"); the clips are not
    checked here (see :func:`prepare_clips`).
    """
    check_mono(mono)
    audio = _as_tensor(audio, "audio")
    if isinstance(audio, torch.Tensor):
        if audio.dim() == 1:
            if lengths is not None:
                raise ValueError("lengths is only meaningful with a padded [B, N] batch, not a 1-D clip.")
            return [audio]
        if audio.dim() != 2:
            raise ValueError(
                "audio must be [samples], [batch, samples] with lengths, one clip [samples, channels] or a list "
                f"of clips; got shape {tuple(audio.shape)}."
            )
        if lengths is not None:
            return _padded_batch(audio, lengths)
        rows, cols = audio.shape
        if cols <= MAX_CHANNELS < rows:  # [samples, channels], as soundfile reads
            return [to_mono(audio.T, mono)]
        if rows == 1:
            return [audio[0]]
        if rows <= MAX_CHANNELS < cols:
            raise _ambiguous(tuple(audio.shape), mono)
        return list(audio)
    if isinstance(audio, (list, tuple)):
        if lengths is not None:
            raise ValueError("lengths is only meaningful with a padded [B, N] tensor, not a list of clips.")
        if len(audio) == 0:
            raise ValueError("audio is an empty list; pass at least one clip.")
        return [_one_clip(item, f"audio[{i}]", mono) for i, item in enumerate(audio)]
    raise TypeError(
        f"audio must be a torch.Tensor, numpy array or a list of them, got {type(audio).__name__}."
    )


def _padded_batch(audio: torch.Tensor, lengths: torch.Tensor | Sequence[int]) -> list[torch.Tensor]:
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.numel() != audio.shape[0]:
        raise ValueError(f"lengths must have one entry per clip ({audio.shape[0]}), got {tuple(lengths.shape)}.")
    if lengths.is_floating_point() or (lengths < 0).any() or (lengths > audio.shape[1]).any():
        raise ValueError(f"lengths must lie in [0, {audio.shape[1]}] (whole samples), got {lengths.tolist()}.")
    return [a[: int(n)] for a, n in zip(audio, lengths)]


def clip_names(count: int, names: Sequence[str] | None = None) -> list[str]:
    """The names clips go by in errors and warnings: ``names`` (one per clip) or ``audio[i]``."""
    if names is None:
        return [f"audio[{i}]" for i in range(count)] if count > 1 else ["audio"]
    if isinstance(names, str) or len(names) != count:
        raise ValueError(f"names must give one name per clip ({count}), got {names!r}.")
    return [str(n) for n in names]


def check_sample_rate_arg(sample_rate: Any, audio: Any, lengths: Any) -> None:
    """A ``TypeError`` for clip lengths given where ``encode`` takes the sample rate (its second positional
    parameter): a tensor or array, or one value per clip with a padded batch tensor (which has one rate)."""
    hint = "if these are the clips' lengths in samples, pass them by keyword: encode(audio, sample_rate, lengths=...)."
    if isinstance(sample_rate, (torch.Tensor, np.ndarray)):
        raise TypeError(f"sample_rate must be an int (Hz) or a list of ints, one per clip, got a "
                        f"{type(sample_rate).__name__}; {hint}")
    if isinstance(sample_rate, (list, tuple)) and isinstance(audio, (torch.Tensor, np.ndarray)) and lengths is None:
        raise TypeError(f"sample_rate has one value per clip ({len(sample_rate)}) but audio is one tensor, which has "
                        f"one sample rate; one rate per clip goes with a list of clips. {hint[0].upper()}{hint[1:]}")


def _sample_rates(sample_rate: int | Sequence[int], count: int) -> list[int]:
    rates = list(sample_rate) if isinstance(sample_rate, (list, tuple)) else [sample_rate] * count
    if len(rates) != count:
        raise ValueError(f"sample_rate must be one rate or one per clip ({count}), got {len(rates)} rates.")
    for rate in rates:
        if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {rate!r}.")
    return [int(r) for r in rates]


def check_long_enough(num_samples: int, sample_rate: int, min_samples: int, name: str = "audio") -> None:
    """A ``ValueError`` naming ``name`` when ``num_samples`` (at ``sample_rate``) is under ``min_samples``."""
    if num_samples < min_samples:
        raise ValueError(
            f"{name} is too short: {num_samples} samples at {sample_rate} Hz; at least {min_samples} are "
            f"needed ({1000 * min_samples / sample_rate:g} ms, one fbank window)."
        )


def prepare_clips(
    clips: Sequence[torch.Tensor],
    sample_rate: int | Sequence[int],
    target_rate: int,
    min_samples: int = 1,
    names: Sequence[str] | None = None,
) -> list[torch.Tensor]:
    """Check every clip (errors and warnings name it), resample it to ``target_rate`` and check that it
    holds ``min_samples`` there. sample_rate: one rate, or one per clip."""
    names = clip_names(len(clips), names)
    out = []
    for clip, rate, name in zip(clips, _sample_rates(sample_rate, len(clips)), names):
        check_waveform(clip, name)
        warn_if_clipping(clip, name)
        clip = resample(clip.float(), rate, target_rate)
        check_long_enough(clip.numel(), target_rate, min_samples, name)
        out.append(clip)
    return out
