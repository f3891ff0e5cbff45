"""Training stage of the decoder's HiFi-GAN vocoder (Kong et al., 2020, s.2.3).

Generator: the codec's ``SpeechT5HifiGan`` (``codec.decoder.vocoder``); discriminators:
:class:`codec.training.discriminators.HifiGanDiscriminator` (multi-period + multi-scale), held
by this stage only (they are in the training checkpoints, not in the saved codec).

Per batch of 16 kHz windows ``y`` (N samples, F = N / hop frames): ``s`` = log-mel of ``y``
[B, F, 64] (:mod:`codec.mel`, the mel the VAE reconstructs), ``y^ = G(s)`` cut to N
samples (with ``input_mel="decoded"``, ``y^ = G(s~)`` for the codec's own reconstruction ``s~``
of ``s``: encode -> diffusion decode -> VAE; the losses below still compare with ``y`` and ``s``).
Two phases per micro-batch, each with its own AdamW (both in the checkpoint):

1. ``generator``: ``adversarial_weight`` * sum_k mean (1 - D_k(y^))^2
   + ``feature_weight`` (2) * sum_k,l mean |D_k,l(y) - D_k,l(y^)|
   + ``mel_weight`` (45) * mean |mel(y^) - s| (optionally on ``log(exp(.) + mel_floor)``)
   + ``stft_weight`` * multi-resolution STFT distance; the discriminators take no gradient here;
2. ``discriminator``: sum_k mean (1 - D_k(y))^2 + mean D_k(y^)^2 on the detached ``y^`` of
   phase 1 (handed over through ``carry``), so the generator runs once per micro-batch.

The paper alternates discriminator then generator; generator first lets one forward of G serve
both phases. ``adversarial_start`` delays both GAN terms (and the discriminator updates) by a
number of micro-batches: a mel-only warm-up that cheap CPU runs profit from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from codec.mel import LogMelFrontEnd, MelConfig
from codec.model import SemantiCodec
from codec.sampling import SAMPLERS, DecodeSettings
from codec.training.discriminators import (
    HifiGanDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codec.training.losses import check_windows
from plumbing.config_file import check_field_types

__all__ = ["VocoderTrainingConfig", "VocoderLosses", "VocoderTrainingStep"]

PHASES = ("generator", "discriminator")
INPUT_MELS = ("audio", "decoded")


@dataclass
class VocoderTrainingConfig:
    """Hyper-parameters of the HiFi-GAN objective (the ``vocoder`` section of a codec recipe config).

    mel_weight / feature_weight / adversarial_weight: loss weights (paper: 45 / 2 / 1).
    periods / scales: the multi-period discriminator's periods and the multi-scale one's scales.
    discriminator_width: channel scale of all discriminators (1.0: the paper's size).
    adversarial_start: micro-batches (optimiser steps x gradient accumulation) of mel-only
        training before the GAN terms switch on.
    """

    mel_weight: float = 45.0
    feature_weight: float = 2.0
    adversarial_weight: float = 1.0
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    scales: int = 3
    discriminator_width: float = 1.0
    adversarial_start: int = 0
    # Multi-resolution STFT loss (spectral convergence + log magnitude, Parallel WaveGAN's
    # resolutions): not in HiFi-GAN V1, but its linear-magnitude term rewards energy at the exact
    # frequency, which the log-mel L1 barely does on sparse spectra such as pure tones.
    stft_weight: float = 0.0
    # Loss floors against collapse to silence on sparse spectra (pure tones): with the log-mel's
    # 1e-5 clamp almost every bin of a tone's mel sits at the floor, so an almost silent output
    # matches all of them and costs only at the tone's few bins, less than energy in a wrong bin.
    # mel_floor > 0 compares log(mel + mel_floor) instead (mel magnitudes; a 0.5-peak tone peaks
    # near 4), so what lies far below the sound costs nothing either way; stft_floor clamps the
    # STFT magnitudes of the MR-STFT term's log part (its default: the metric's 1e-7).
    mel_floor: float = 0.0
    stft_floor: float = 1e-7
    # Once the vocoder puts its energy in the right bins, lower floors teach it to clean up what
    # it leaves below them (a log-mel metric counts that noise): both floors fall log-linearly
    # by floor_final_scale over floor_decay_steps micro-batches from micro-batch floor_decay_start
    # (floor_final_scale 1: constant floors).
    floor_final_scale: float = 1.0
    floor_decay_start: int = 0
    floor_decay_steps: int = 0
    # What the vocoder hears: "audio", the log-mel of each training window (HiFi-GAN's training),
    # or "decoded", the codec's own reconstruction of that mel (encode -> diffusion decode ->
    # VAE), the mel the vocoder gets at inference. The targets stay the true audio and its mel,
    # so the vocoder learns to undo the decoder's systematic errors (HiFi-GAN s.4.4 fine-tunes on
    # a TTS model's predicted mels the same way). "decoded" needs a trained decoder in the codec.
    input_mel: Literal["audio", "decoded"] = "audio"
    decoded_steps: int = 25  # sampler steps of that decode
    decoded_sampler: str = "dpmsolver++"  # a name of codec.sampling.SAMPLERS
    decoded_cfg_scale: float | None = None  # None: the codec's config.cfg_scale

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("mel_weight", "feature_weight", "adversarial_weight", "adversarial_start", "stft_weight",
                     "mel_floor", "floor_decay_start", "floor_decay_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if any(p < 1 for p in self.periods) or self.scales < 0 or (not self.periods and not self.scales):
            raise ValueError(f"periods must be >= 1 and scales >= 0 with at least one discriminator, got "
                             f"periods={self.periods}, scales={self.scales}.")
        if self.stft_floor <= 0:
            raise ValueError(f"stft_floor must be positive, got {self.stft_floor}.")
        if not 0 < self.floor_final_scale <= 1:
            raise ValueError(f"floor_final_scale must be in (0, 1], got {self.floor_final_scale}.")
        if self.discriminator_width <= 0:
            raise ValueError(f"discriminator_width must be positive, got {self.discriminator_width}.")
        if self.input_mel not in INPUT_MELS:
            raise ValueError(f"input_mel must be one of {INPUT_MELS}, got {self.input_mel!r}.")
        if self.decoded_steps < 1:
            raise ValueError(f"decoded_steps must be >= 1, got {self.decoded_steps}.")
        if self.decoded_sampler not in SAMPLERS:
            raise ValueError(f"decoded_sampler must be one of {SAMPLERS}, got {self.decoded_sampler!r}.")

    def floor_scale(self, updates: int) -> float:
        """Factor on ``mel_floor`` and ``stft_floor`` after ``updates`` micro-batches."""
        if self.floor_final_scale == 1.0 or updates <= self.floor_decay_start:
            return 1.0
        done = min(1.0, (updates - self.floor_decay_start) / max(1, self.floor_decay_steps))
        return self.floor_final_scale ** done


@dataclass
class VocoderLosses:
    """One phase's losses. Generator phase: total (loss), mel L1, adversarial, feature matching;
    discriminator phase: total (disc). ``carry``: the generator's detached output for phase 2."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]
    carry: dict[str, torch.Tensor]

    def as_dict(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self.parts.items()}


class VocoderTrainingStep(nn.Module):
    """``step(waves, lengths, phase=...)`` -> :class:`VocoderLosses`; trains the vocoder and the discriminators."""

    stage_name = "vocoder"

    def __init__(self, codec: SemantiCodec, config: VocoderTrainingConfig | None = None,
                 mel: MelConfig | None = None, init_seed: int = 0) -> None:
        """init_seed: seed of the discriminators' random weights (the global RNG is left alone)."""
        super().__init__()
        if codec.decoder is None:
            raise ValueError("the codec has no decoder; build it with SemantiCodec(config, with_decoder=True).")
        self.config = c = config or VocoderTrainingConfig()
        self.codec = codec
        self.mel = LogMelFrontEnd(codec.config, mel)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.discriminator = HifiGanDiscriminator(tuple(c.periods), c.scales, c.discriminator_width)
        # Micro-batches seen, to switch the GAN terms on; a buffer so that checkpoints carry it.
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        codec.requires_grad_(False)
        codec.decoder.vocoder.requires_grad_(True)
        self.train()

    def train(self, mode: bool = True) -> VocoderTrainingStep:
        """Only the vocoder and the discriminators follow ``mode``."""
        super().train(mode)
        self.codec.eval()
        self.codec.decoder.vocoder.train(mode)
        return self

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.codec.decoder.vocoder.parameters()

    def phases(self) -> list[tuple[str, list[nn.Parameter]]]:
        return [("generator", list(self.generator_parameters())),
                ("discriminator", list(self.discriminator.parameters()))]

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None, phase: str = "generator",
                carry: dict[str, torch.Tensor] | None = None) -> VocoderLosses:
        """waves: FloatTensor[B, N] at 16 kHz (N <= segment). ``phase``: ``generator`` or
        ``discriminator`` (which needs the ``carry`` of the generator phase of the same batch)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
        lengths = check_windows(waves, lengths, self.codec.config)
        hop = self.mel.mel.hop_length
        frames = waves.shape[1] // hop
        keep = torch.arange(frames * hop, device=waves.device)[None] < lengths[:, None]
        real = waves[:, : frames * hop].float() * keep
        adversarial = int(self.updates) >= self.config.adversarial_start
        if phase == "discriminator":
            if carry is None or "fake" not in carry:
                raise ValueError("the discriminator phase needs carry={'fake': ...} from the generator phase.")
            if self.training:
                self.updates += 1  # micro-batches seen (a buffer: checkpoints carry it)
            self.discriminator.requires_grad_(True)
            if not adversarial:  # warm-up: a zero loss that still touches every parameter (DDP, AMP)
                zero = sum(p.sum() for p in self.discriminator.parameters()) * 0.0
                return VocoderLosses(zero, {"disc": zero}, {})
            loss = discriminator_loss(self.discriminator(real), self.discriminator(carry["fake"].float()))
            return VocoderLosses(loss, {"disc": loss}, {})

        self.discriminator.requires_grad_(False)
        vocoder = self.codec.decoder.vocoder
        mel = self.mel(real, frames).squeeze(1)  # [B, F, mel_bins]
        heard = mel if self.config.input_mel == "audio" else self._decoded_mel(real, lengths, frames, generator)
        fake = vocoder(heard.to(next(vocoder.parameters()).dtype)).float()
        if fake.shape[-1] < real.shape[-1]:
            raise ValueError(f"the vocoder gave {fake.shape[-1]} samples for {frames} frames; expected at least "
                             f"{real.shape[-1]} (hop {hop}): check vocoder_upsample_rates.")
        fake = fake[:, : real.shape[-1]] * keep
        fake_mel = self.mel(fake, frames).squeeze(1)
        floor_scale = self.config.floor_scale(int(self.updates))
        if self.config.mel_floor:
            floor = self.config.mel_floor * floor_scale
            mel_loss = F.l1_loss((fake_mel.exp() + floor).log(), (mel.exp() + floor).log())
        else:
            mel_loss = F.l1_loss(fake_mel, mel)
        total = self.config.mel_weight * mel_loss
        parts = {"mel": mel_loss}
        if self.config.stft_weight:
            from codec.eval.metrics import multi_resolution_stft_distance

            # Spectral convergence divides by the window's own energy: silent windows (the gaps
            # between noise bursts, padding) would blow it up, so they are left out of this term.
            audible = real.abs().amax(dim=1) > 1e-3
            eps = self.config.stft_floor * floor_scale
            stft = (multi_resolution_stft_distance(real[audible], fake[audible], eps=eps).mean() if audible.any()
                    else fake.sum() * 0.0)
            total = total + self.config.stft_weight * stft
            parts["stft"] = stft
        if adversarial:
            with torch.no_grad():
                real_out = self.discriminator(real)
            fake_out = self.discriminator(fake)
            adv = generator_adversarial_loss(fake_out)
            fm = feature_matching_loss(real_out, fake_out)
            total = total + self.config.adversarial_weight * adv + self.config.feature_weight * fm
            parts.update(adversarial=adv, feature_matching=fm)
        parts = {"loss": total, **parts}
        return VocoderLosses(total, parts, {"fake": fake.detach()})

    @torch.no_grad()
    def _decoded_mel(self, real: torch.Tensor, lengths: torch.Tensor, frames: int,
                     generator: torch.Generator | None) -> torch.Tensor:
        """[B, frames, mel_bins] the codec's reconstruction of each window's mel (encode ->
        diffusion decode -> VAE), one decoder window per training window; noise from ``generator``."""
        codec, decoder, c = self.codec, self.codec.decoder, self.config
        encoded = codec.encode([real[i, : int(n)] for i, n in enumerate(lengths)], codec.config.sample_rate,
                               progress=False)
        windows = len(decoder.plan_windows(encoded.lengths.tolist()))
        if windows != real.shape[0]:
            raise ValueError(f"vocoder.input_mel='decoded' needs each training window to fit one decoder window "
                             f"({codec.config.window_tokens} token frames), but these windows have up to "
                             f"{int(encoded.lengths.max())}; shorten train.window_seconds.")
        latents, _, _ = decoder.decode_latents(
            encoded.tokens, codec.acoustic.codebook, codec.semantic.centroids, encoded.lengths,
            DecodeSettings(sampler=c.decoded_sampler, steps=c.decoded_steps, cfg_scale=c.decoded_cfg_scale),
            generator=generator, batch_size=windows)
        return decoder.latents_to_mel(latents).float().squeeze(1)[:, :frames].clone()
