"""Log-mel front end of the decoder's VAE and vocoder (the mel the diffusion latents encode).

The encoder side uses a Kaldi fbank (:mod:`codec.fbank`); the decoder side works on a
different mel: 64 bins, the AudioLDM / HiFi-GAN convention. We use AudioLDM's parameters,
which the official decoder was trained with:

* 16 kHz audio, ``n_fft = 1024``, ``win_length = 1024`` (periodic Hann), ``hop = 160``
  (10 ms), so a 10.24 s window gives ``segment_frames = 1024`` frames;
* the signal is reflect-padded by ``(n_fft - hop) / 2`` on both sides and framed without
  centring, which gives exactly ``samples / hop`` frames;
* magnitude (not power) spectrum, 64 Slaney-style mel filters (librosa's default
  ``htk=False, norm="slaney"``) from 0 to 8000 Hz;
* ``log(clamp(mel, 1e-5))``; no further normalisation.

Output ``[B, 1, segment_frames, 64]``: the VAE's input image (time along height).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codec.config import SemantiCodecConfig


@dataclass(frozen=True)
class MelConfig:
    """Parameters of the decoder mel (AudioLDM's defaults; see the module docstring)."""

    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float = 8000.0
    clamp_min: float = 1e-5


def _hz_to_mel_slaney(freq: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    linear = freq / f_sp
    log = min_log_mel + torch.log(freq.clamp(min=min_log_hz) / min_log_hz) / logstep
    return torch.where(freq >= min_log_hz, log, linear)


def _mel_to_hz_slaney(mel: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    linear = mel * f_sp
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, linear)


def slaney_mel_filters(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangular, area-normalised mel filters [n_mels, n_fft // 2 + 1] (librosa's defaults)."""
    fft_freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(_hz_to_mel_slaney(torch.tensor(f_min, dtype=torch.float64))),
        float(_hz_to_mel_slaney(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz = _mel_to_hz_slaney(mels)
    widths = hz.diff()
    ramps = hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    weights = weights * (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return weights.to(torch.float32)


def log_mel_frames(x: torch.Tensor, filters: torch.Tensor, window: torch.Tensor, mel: MelConfig) -> torch.Tensor:
    """fp32 waveforms [B, N] -> log-mel [B, n_mels, N // hop]: reflect padding of
    ``(n_fft - hop) / 2`` per side, uncentred STFT magnitude, mel filters, ``log(clamp(., clamp_min))``."""
    pad = (mel.n_fft - mel.hop_length) // 2
    x = F.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(x, mel.n_fft, hop_length=mel.hop_length, win_length=mel.win_length, window=window,
                      center=False, return_complex=True).abs()  # [B, F, frames]
    return torch.matmul(filters, spec).clamp(min=mel.clamp_min).log()


class LogMelFrontEnd(nn.Module):
    """16 kHz waveforms [B, N] -> log-mel images [B, 1, segment_frames, vae_mel_bins].

    Frames past ``segment_frames`` (or ``num_frames``) are cut; shorter inputs are zero-padded (in samples) first,
    so every window gives the VAE its fixed-size image. Runs in fp32 (also under autocast).
    """

    def __init__(self, config: SemantiCodecConfig, mel: MelConfig | None = None):
        super().__init__()
        self.config = config
        self.mel = mel or MelConfig()
        m = self.mel
        if m.hop_length != config.hop_length:
            raise ValueError(f"mel hop {m.hop_length} must equal the codec's hop {config.hop_length}.")
        self.register_buffer("window", torch.hann_window(m.win_length), persistent=False)
        self.register_buffer(
            "filters",
            slaney_mel_filters(config.vae_mel_bins, m.n_fft, config.sample_rate, m.f_min, m.f_max),
            persistent=False,
        )

    def forward(self, waves: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """num_frames: frames to return (default ``segment_frames``; the vocoder stage asks for
        its window's frames rather than a whole segment)."""
        cfg, m = self.config, self.mel
        if waves.dim() != 2:
            raise ValueError(f"waves must be [batch, samples], got shape {tuple(waves.shape)}.")
        frames = cfg.segment_frames if num_frames is None else num_frames
        if frames <= 0:
            raise ValueError(f"num_frames must be positive, got {num_frames}.")
        target = frames * m.hop_length
        with torch.autocast(device_type=waves.device.type, enabled=False):
            x = waves.float()
            if x.shape[1] < target:
                x = F.pad(x, (0, target - x.shape[1]))
            mel = log_mel_frames(x, self.filters, self.window, m)
        return mel[..., :frames].transpose(1, 2).unsqueeze(1)
