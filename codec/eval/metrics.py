"""Audio quality metrics for codec evaluation: reference waveform vs reconstruction.

Small torch functions, each taking ``reference`` and ``estimate`` of equal shape, [N] or
[B, N] float waveforms, and returning one value per clip (a 0-d tensor for [N], [B] for a
batch):

* :func:`mel_distance` -- mean L1 distance of the decoder's 64-bin log-mel (the mel the
  codec's VAE and vocoder work on, :mod:`codec.mel`); lower is better.
* :func:`multi_resolution_stft_distance` -- spectral convergence + mean L1 of the log
  magnitude, averaged over three STFT resolutions (the Parallel WaveGAN set); lower is better.
* :func:`si_sdr` -- scale-invariant signal-to-distortion ratio in dB; higher is better.

Perceptual metrics from optional packages (``pip install 'semantilm[eval]'``), imported on
first use: :func:`pesq_wideband` (``pesq``), :func:`stoi` (``pystoi``) and :func:`visqol`
(``visqol-python``, a pure-Python port of Google's ViSQOL v3 with its models).
:func:`metric_unavailable` says why one cannot run here.

:func:`dominant_frequency` and :func:`spectral_peaks` (FFT peaks with parabolic
interpolation) measure the pitch of generated tones and chords.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "STFTResolution",
    "MRSTFT_RESOLUTIONS",
    "log_mel",
    "mel_distance",
    "multi_resolution_stft_distance",
    "si_sdr",
    "pesq_wideband",
    "stoi",
    "visqol",
    "metric_unavailable",
    "dominant_frequency",
    "spectral_peaks",
]

_INSTALL = "install it with pip install 'semantilm[eval]'"


@dataclass(frozen=True)
class STFTResolution:
    """One STFT of the multi-resolution distance (sizes in samples)."""

    n_fft: int
    hop_length: int
    win_length: int


# Parallel WaveGAN's three resolutions, the usual choice for codec and vocoder losses.
MRSTFT_RESOLUTIONS = (STFTResolution(1024, 120, 600), STFTResolution(2048, 240, 1200), STFTResolution(512, 50, 240))


def _check_pair(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a metric's inputs; returns them as float32 [B, N] and whether the input was 1-D."""
    for name, x in (("reference", reference), ("estimate", estimate)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor waveform, got {type(x).__name__}.")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point waveform, got dtype {x.dtype}.")
        if x.dim() not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(f"{name} must be a non-empty [samples] or [batch, samples] waveform, got {tuple(x.shape)}.")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or Inf samples.")
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference {tuple(reference.shape)} and estimate {tuple(estimate.shape)} must have the same shape; "
            "trim both to the shorter length first."
        )
    single = reference.dim() == 1
    return reference.float().reshape(-1, reference.shape[-1]), estimate.float().reshape(-1, estimate.shape[-1]), single


def _out(values: torch.Tensor, single: bool) -> torch.Tensor:
    return values[0] if single else values


@lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_mels: int, n_fft: int) -> torch.Tensor:
    from codec.mel import MelConfig, slaney_mel_filters

    return slaney_mel_filters(n_mels, n_fft, sample_rate, MelConfig.f_min, min(MelConfig.f_max, sample_rate / 2))


def log_mel(wave: torch.Tensor, sample_rate: int = 16000, n_mels: int = 64) -> torch.Tensor:
    """[B, N] waveforms -> [B, frames, n_mels] natural-log mel magnitudes (the decoder's mel settings).

    Same STFT, filters and floor as :class:`codec.mel.LogMelFrontEnd`, but for any
    length (no padding or cutting to a 10.24 s window).
    """
    from codec.mel import MelConfig, log_mel_frames

    m = MelConfig()
    x = wave.float()
    if x.shape[-1] < m.n_fft:
        x = F.pad(x, (0, m.n_fft - x.shape[-1]))
    window = torch.hann_window(m.win_length, device=x.device)
    filters = _mel_filters(int(sample_rate), n_mels, m.n_fft).to(x.device)
    return log_mel_frames(x, filters, window, m).transpose(1, 2)


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """Mean absolute difference of the 64-bin log-mel spectrograms (nats); 0 for identical audio."""
    ref, est, single = _check_pair(reference, estimate)
    diff = (log_mel(ref, sample_rate) - log_mel(est, sample_rate)).abs()
    return _out(diff.mean(dim=(1, 2)), single)


def multi_resolution_stft_distance(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    resolutions: Sequence[STFTResolution] = MRSTFT_RESOLUTIONS,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Spectral convergence ``||S - S'||_F / ||S||_F`` plus mean ``|log S - log S'|``, averaged over resolutions."""
    ref, est, single = _check_pair(reference, estimate)
    if not resolutions:
        raise ValueError("resolutions is empty; pass at least one STFTResolution.")
    total = torch.zeros(ref.shape[0], device=ref.device)
    for r in resolutions:
        window = torch.hann_window(r.win_length, device=ref.device)
        s_ref, s_est = (
            torch.stft(x, r.n_fft, r.hop_length, r.win_length, window, return_complex=True).abs().clamp(min=eps)
            for x in (ref, est)
        )
        convergence = (s_ref - s_est).flatten(1).norm(dim=1) / s_ref.flatten(1).norm(dim=1)
        log_mag = (s_ref.log() - s_est.log()).abs().flatten(1).mean(dim=1)
        total = total + convergence + log_mag
    return _out(total / len(resolutions), single)


def si_sdr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    """Scale-invariant SDR in dB: energy of the estimate's projection on the reference over the rest.

    Computed in float64; ``eps`` only guards against 0 / 0 (silence), so very quiet estimates are not flattened to 0 dB.
    """
    ref, est, single = _check_pair(reference, estimate)
    ref = ref.double() - ref.double().mean(dim=1, keepdim=True)
    est = est.double() - est.double().mean(dim=1, keepdim=True)
    scale = (est * ref).sum(dim=1, keepdim=True) / (ref.pow(2).sum(dim=1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    ratio = (target.pow(2).sum(dim=1) + eps) / (noise.pow(2).sum(dim=1) + eps)
    return _out((10 * torch.log10(ratio)).float(), single)


def metric_unavailable(name: str) -> str | None:
    """Why metric ``name`` ("pesq", "stoi", "visqol") cannot run here, or None when it can."""
    import importlib.util

    modules = {"pesq": "pesq", "stoi": "pystoi", "visqol": "visqol"}  # metric -> module
    distributions = {"visqol": "visqol-python"}  # where the pip name differs
    if name not in modules:
        raise ValueError(f"unknown optional metric {name!r}; known: {sorted(modules)}.")
    if importlib.util.find_spec(modules[name]) is None:
        return f"the {distributions.get(name, modules[name])!r} package is not installed; {_INSTALL}"
    return None


def _require(name: str) -> None:
    reason = metric_unavailable(name)
    if reason is not None:
        raise ImportError(f"{name.upper()} cannot run: {reason}.")


def _resampled_numpy(x: torch.Tensor, sample_rate: int, target: int = 16000) -> np.ndarray:
    from codec.audio import resample

    return resample(x.float().cpu(), int(sample_rate), target).double().numpy()


def pesq_wideband(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO -0.5..4.6; higher is better) at 16 kHz (resampled).

    Raises ``ValueError`` for clips PESQ cannot score (e.g. silence: no utterance found).
    """
    _require("pesq")
    from pesq import pesq

    ref, est, single = _check_pair(reference, estimate)
    scores = []
    for r, e in zip(_resampled_numpy(ref, sample_rate), _resampled_numpy(est, sample_rate)):
        try:
            scores.append(pesq(16000, r, e, "wb"))
        except Exception as err:  # the package raises its own error types (NoUtterancesError, ...)
            raise ValueError(f"PESQ cannot score this clip: {type(err).__name__}: {err}") from err
    return _out(torch.tensor(scores, dtype=torch.float32), single)


def stoi(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 16000, extended: bool = False) -> torch.Tensor:
    """Short-time objective intelligibility (0..1, higher is better; ``extended`` gives ESTOI)."""
    _require("stoi")
    from pystoi import stoi as pystoi_stoi

    ref, est, single = _check_pair(reference, estimate)
    scores = [
        pystoi_stoi(r, e, 16000, extended=extended)
        for r, e in zip(_resampled_numpy(ref, sample_rate), _resampled_numpy(est, sample_rate))
    ]
    return _out(torch.tensor(scores, dtype=torch.float32), single)


VISQOL_MODES = {"audio": 48000, "speech": 16000}  # mode -> the rate ViSQOL scores it at


@lru_cache(maxsize=2)
def _visqol_api(mode: str):  # noqa: ANN202 - visqol.VisqolApi, an optional package
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode=mode)
    return api


def visqol(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 16000, mode: str = "audio") -> torch.Tensor:
    """ViSQOL v3 MOS-LQO (1..5, higher is better) from ``visqol-python``.

    mode: "audio" (general audio and music; scored at 48 kHz, the clips are resampled) or
    "speech" (16 kHz). Raises ``ValueError`` for a clip it cannot score (under about 1 s, silence).
    """
    if mode not in VISQOL_MODES:
        raise ValueError(f"mode must be one of {sorted(VISQOL_MODES)}, got {mode!r}.")
    _require("visqol")
    ref, est, single = _check_pair(reference, estimate)
    rate = VISQOL_MODES[mode]
    scores = []
    for r, e in zip(_resampled_numpy(ref, sample_rate, rate), _resampled_numpy(est, sample_rate, rate)):
        try:
            score = float(_visqol_api(mode).measure_from_arrays(r, e, sample_rate=rate).moslqo)
        except Exception as err:  # the package's own checks (e.g. a clip shorter than one patch)
            raise ValueError(f"ViSQOL cannot score this clip: {type(err).__name__}: {err}") from err
        if not math.isfinite(score):
            raise ValueError("ViSQOL gives no score for this clip (silent reference or estimate?).")
        scores.append(score)
    return _out(torch.tensor(scores, dtype=torch.float32), single)


def spectral_peaks(
    wave: torch.Tensor | np.ndarray, sample_rate: int, min_frequency: float = 20.0, threshold: float = 0.3
) -> list[tuple[float, float]]:
    """(frequency Hz, magnitude) of the spectral peaks at least ``threshold`` x the strongest, by frequency.

    Hann-windowed FFT of the whole clip, zero-padded to at least 4x its length; each peak's
    frequency is refined by parabolic interpolation of the log magnitude around its bin
    (sub-bin accuracy). Empty for a silent clip.
    """
    x = torch.as_tensor(wave if isinstance(wave, torch.Tensor) else np.asarray(wave, dtype=np.float64))
    if x.dim() != 1 or x.numel() < 4:
        raise ValueError(f"wave must be a 1-D waveform of at least 4 samples, got shape {tuple(x.shape)}.")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}.")
    x = x.double().cpu()
    x = x - x.mean()
    n_fft = 1 << math.ceil(math.log2(4 * x.numel()))
    spectrum = torch.fft.rfft(x * torch.hann_window(x.numel(), periodic=False, dtype=torch.float64), n=n_fft).abs()
    first = max(1, math.ceil(min_frequency * n_fft / sample_rate))
    band = spectrum[first - 1 :]  # one bin below the band, so that its first bin can be a local maximum
    if band.numel() < 3 or float(band[1:].max()) <= 0:
        return []
    middle = band[1:-1]
    is_peak = (middle >= threshold * float(band[1:].max())) & (middle > band[:-2]) & (middle >= band[2:])
    log = band.clamp(min=1e-300).log()
    peaks = []
    for i in torch.nonzero(is_peak).flatten().tolist():
        a, b, c = (float(v) for v in log[i : i + 3])
        denominator = a - 2 * b + c
        offset = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
        peaks.append(((first + i + offset) * sample_rate / n_fft, float(middle[i])))
    return peaks


def dominant_frequency(wave: torch.Tensor | np.ndarray, sample_rate: int, min_frequency: float = 20.0) -> float:
    """Frequency (Hz) of the strongest spectral peak above ``min_frequency`` (NaN for silence); see spectral_peaks."""
    peaks = spectral_peaks(wave, sample_rate, min_frequency, threshold=1.0)
    return peaks[0][0] if peaks else float("nan")
