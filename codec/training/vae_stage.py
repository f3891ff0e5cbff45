"""Training stage of the decoder's mel VAE (the LDM first stage, without its adversarial part).

Per batch of 16 kHz windows: log-mel image ``x`` [B, 1, segment_frames, 64]
(:mod:`codec.mel`, zero-padded clips included, as the decoder stage sees them) ->
diffusers ``AutoencoderKL`` posterior ``q(z|x)`` -> ``z`` drawn from it -> reconstruction ``x^``.

loss = mean|x^ - x| (+ ``l2_weight`` * mean (x^ - x)^2) + ``kl_weight`` * KL(q(z|x) || N(0, I)) / P

where KL is diffusers' ``latent_dist.kl()`` (summed over the latent) averaged over the batch and
``P`` is the number of mel pixels, so ``kl_weight`` has the LDM meaning (their reconstruction
loss is summed over pixels; 1e-6 is the Stable Diffusion / LDM value). The LDM's LPIPS and
patch-GAN terms are left out: there is no perceptual network for mels, and for a codec the
reconstruction is what matters.

After training (:meth:`VAETrainingStep.on_train_end`) the decoder's ``scale_factor`` is set to
1 / std of the latents over the training windows (the LDM convention): the decoder stage
multiplies VAE latents by it to get unit-variance diffusion targets, and decoding divides by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codec.mel import LogMelFrontEnd, MelConfig
from codec.model import SemantiCodec
from codec.training.losses import check_windows
from codec.training.windows import ClipWindows, EpochWindows, collate_windows
from plumbing.config_file import check_field_types

__all__ = ["VAETrainingConfig", "VAELosses", "VAETrainingStep", "latent_scale"]


@dataclass
class VAETrainingConfig:
    """Hyper-parameters of the VAE objective (the ``vae`` section of a codec recipe config).

    kl_weight: weight of the KL term per mel pixel (LDM convention, see the module docstring).
    l2_weight: weight of an extra mean-squared reconstruction term (0: L1 only).
    scale_windows: at most this many training windows estimate the latent std at the end.
    """

    kl_weight: float = 1.0e-6
    l2_weight: float = 0.0
    scale_windows: int = 256

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.kl_weight < 0 or self.l2_weight < 0:
            raise ValueError(f"kl_weight and l2_weight must be >= 0, got {self.kl_weight}, {self.l2_weight}.")
        if self.scale_windows <= 0:
            raise ValueError(f"scale_windows must be positive, got {self.scale_windows}.")


@dataclass
class VAELosses:
    """total (with graph), L1 / L2 reconstruction and KL (per sample, summed over the latent)."""

    total: torch.Tensor
    l1: torch.Tensor
    l2: torch.Tensor
    kl: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        return {"loss": float(self.total.detach()), "l1": float(self.l1.detach()),
                "l2": float(self.l2.detach()), "kl": float(self.kl.detach())}


class VAETrainingStep(nn.Module):
    """``step(waves, lengths)`` -> :class:`VAELosses`; trains only ``codec.decoder.vae``."""

    stage_name = "vae"

    def __init__(self, codec: SemantiCodec, config: VAETrainingConfig | None = None,
                 mel: MelConfig | None = None) -> None:
        super().__init__()
        if codec.decoder is None:
            raise ValueError("the codec has no decoder; build it with SemantiCodec(config, with_decoder=True).")
        self.config = config or VAETrainingConfig()
        self.codec = codec
        self.mel = LogMelFrontEnd(codec.config, mel)
        codec.requires_grad_(False)
        codec.decoder.vae.requires_grad_(True)
        self.train()

    def train(self, mode: bool = True) -> VAETrainingStep:
        """Only the VAE follows ``mode``; everything else stays in eval mode."""
        super().train(mode)
        self.codec.eval()
        self.codec.decoder.vae.train(mode)
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.codec.decoder.vae.parameters()

    def phases(self) -> list[tuple[str, list[nn.Parameter]]]:
        return [("vae", list(self.trainable_parameters()))]

    def mel_images(self, waves: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Validated windows -> log-mel images [B, 1, segment_frames, mel_bins] (past-length samples zeroed)."""
        lengths = check_windows(waves, lengths, self.codec.config)
        keep = torch.arange(waves.shape[1], device=waves.device)[None] < lengths[:, None]
        return self.mel(waves.float() * keep)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None, phase: str = "vae",
                carry: dict[str, torch.Tensor] | None = None) -> VAELosses:
        """waves: FloatTensor[B, N] at 16 kHz (N <= segment); ``generator`` draws the posterior sample."""
        if phase != "vae":
            raise ValueError(f"phase must be 'vae' for VAETrainingStep, got {phase!r}.")
        vae = self.codec.decoder.vae
        x = self.mel_images(waves, lengths)
        dtype = next(vae.parameters()).dtype
        posterior = vae.encode(x.to(dtype)).latent_dist
        rec = vae.decode(posterior.sample(generator), return_dict=False)[0].float()
        l1 = F.l1_loss(rec, x)
        l2 = F.mse_loss(rec, x)
        kl = posterior.kl().float().mean()
        total = l1 + self.config.l2_weight * l2 + self.config.kl_weight * kl / x[0].numel()
        return VAELosses(total, l1, l2, kl)

    @torch.no_grad()
    def on_train_end(self, windows: ClipWindows) -> None:
        """Set ``codec.decoder.scale_factor`` to 1 / std of the latents (see the module docstring)."""
        self.codec.decoder.scale_factor.fill_(latent_scale(self, windows, self.config.scale_windows))


@torch.no_grad()
def latent_scale(step: VAETrainingStep, windows: ClipWindows, max_windows: int, batch_size: int = 8) -> float:
    """1 / std of posterior samples of the first ``max_windows`` windows of epoch 0 (seeded draw)."""
    vae = step.codec.decoder.vae
    device, dtype = next(vae.parameters()).device, next(vae.parameters()).dtype
    was_training = vae.training
    vae.eval()
    generator = torch.Generator(device=device).manual_seed(windows.seed)
    data = EpochWindows(windows, 0)
    count, total, total_sq = 0, 0.0, 0.0
    for start in range(0, min(len(data), max_windows), batch_size):
        items = [data[i] for i in range(start, min(start + batch_size, len(data), max_windows))]
        waves, lengths = collate_windows(items)
        x = step.mel_images(waves.to(device), lengths.to(device))
        z = vae.encode(x.to(dtype)).latent_dist.sample(generator).double()
        count, total, total_sq = count + z.numel(), total + float(z.sum()), total_sq + float((z * z).sum())
    vae.train(was_training)
    mean = total / count
    std = max(total_sq / count - mean * mean, 0.0) ** 0.5
    if not std > 0:
        raise ValueError("the VAE latents have zero variance over the training windows; cannot set scale_factor.")
    return 1.0 / std
