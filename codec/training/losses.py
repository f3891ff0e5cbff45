"""Training objective of SemantiCodec's acoustic encoder and diffusion decoder (paper s.3).

One step on a batch of 16 kHz windows (one 10.24 s window per clip, shorter clips padded):

1. frozen path (no graph): Kaldi fbank -> AudioMAE -> stacked features -> nearest semantic
   centroid; LSTM input = [feature ; centroid], as at encode time;
2. trained encoder: LSTM + projection -> EMA vector quantiser with a straight-through
   estimator and a commitment loss (:mod:`codec.training.vq`);
3. context = concat(quantised acoustic vectors, semantic centroids) + sinusoidal PE, rows past
   the clip's token count set to -1 (exactly what :class:`codec.decoder.DiffusionDecoder`
   builds at inference); with probability ``p_uncond`` per clip the features are zeroed
   (PE kept), the unconditional context of classifier-free guidance;
4. target: VAE latent of the clip's 64-bin log-mel (:mod:`codec.mel`) times
   ``scale_factor`` (the decoder divides by it before the VAE decoder); frozen VAE;
5. v-prediction loss: ``t ~ U{0..999}``, ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) e``,
   ``v = sqrt(a_t) e - sqrt(1 - a_t) x_0`` on the official scaled-linear schedule
   (:func:`codec.sampling.official_alphas_cumprod`), MSE between the UNet output and v.

total = diffusion + commitment_weight * commitment. Gradients reach the LSTM, the projection
and the UNet; AudioMAE, the semantic centroids, the VAE and the vocoder stay frozen (the VAE
and vocoder are trained in their own stage). The acoustic codebook is a buffer updated by EMA.

:class:`CodecTrainingStep` makes no device or precision decisions: move it (or let Accelerate
prepare it) and run it under autocast as you like; VQ distances and the loss are fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codec.fbank import kaldi_fbank
from codec.mel import LogMelFrontEnd, MelConfig
from codec.model import SemantiCodec
from codec.sampling import official_alphas_cumprod
from codec.semantic import stack_patches
from codec.training.vq import EMAVectorQuantizer
from plumbing.config_file import check_field_types

logger = logging.getLogger(__name__)


@dataclass
class CodecTrainingConfig:
    """Hyper-parameters of the acoustic-encoder + decoder objective.

    p_uncond: probability of the unconditional (zeroed-feature) context per clip (CFG training).
    commitment_weight: weight of the VQ commitment loss (official 1.0).
    ema_decay / ema_eps: EMA codebook decay (official 0.9) and Laplace smoothing.
    dead_code_patience: updates without use before an acoustic code is re-seeded (0: never).
    sample_posterior: draw the VAE latent from its posterior (True) or take its mode.
    train_encoder: train the acoustic encoder and its codebook with the UNet (the paper's joint
        objective). False trains the UNet alone on the frozen encoder's codes: the codes keep
        their meaning, so the UNet can learn to read them finely (a later fine-tuning stage).
    """

    p_uncond: float = 0.1
    commitment_weight: float = 1.0
    ema_decay: float = 0.9
    ema_eps: float = 1e-5
    dead_code_patience: int = 50
    sample_posterior: bool = True
    train_encoder: bool = True

    def __post_init__(self) -> None:
        check_field_types(self)
        if not 0.0 <= self.p_uncond <= 1.0:
            raise ValueError(f"p_uncond must be in [0, 1], got {self.p_uncond}.")
        if self.commitment_weight < 0:
            raise ValueError(f"commitment_weight must be >= 0, got {self.commitment_weight}.")


@dataclass
class CodecLosses:
    """Losses (scalar tensors; ``total`` has the graph) and acoustic-codebook statistics.

    codebook_usage: fraction of acoustic codes chosen in the batch; codebook_perplexity:
    exp(entropy) of the batch's code histogram; reseeded_codes: dead codes re-seeded in this step.
    """

    total: torch.Tensor
    diffusion: torch.Tensor
    commitment: torch.Tensor
    codebook_usage: float
    codebook_perplexity: float
    reseeded_codes: int

    def as_dict(self) -> dict[str, float]:
        """Plain floats for logging (``accelerator.log`` / trackers)."""
        return {
            "loss": float(self.total.detach()),
            "diffusion": float(self.diffusion.detach()),
            "commitment": float(self.commitment.detach()),
            "codebook_usage": self.codebook_usage,
            "codebook_perplexity": self.codebook_perplexity,
            "reseeded_codes": float(self.reseeded_codes),
        }


def check_windows(waves: torch.Tensor, lengths: torch.Tensor | None, config) -> torch.Tensor:  # noqa: ANN001
    """Validate a batch of training windows; return ``lengths`` (LongTensor[B], default N).

    waves: FloatTensor[B, N] with N <= ``config.segment_samples``, finite; lengths: valid samples
    per clip, between one analysis window (``config.win_length``) and N.
    """
    seg = config.segment_samples
    if waves.dim() != 2 or not waves.is_floating_point():
        raise ValueError(f"waves must be a float tensor [batch, samples], got {tuple(waves.shape)} {waves.dtype}.")
    if waves.shape[1] > seg:
        raise ValueError(f"waves have {waves.shape[1]} samples; a training window holds at most {seg}.")
    if not torch.isfinite(waves).all():
        raise ValueError("waves contain NaN or Inf.")
    B, device = waves.shape[0], waves.device
    if lengths is None:
        lengths = torch.full((B,), waves.shape[1], dtype=torch.long, device=device)
    lengths = torch.as_tensor(lengths, device=device).long()
    if lengths.shape != (B,) or int(lengths.min()) < config.win_length or int(lengths.max()) > waves.shape[1]:
        raise ValueError(
            f"lengths must be [batch={B}] sample counts between {config.win_length} and {waves.shape[1]}, "
            f"got {lengths.tolist()}."
        )
    return lengths


def diffuse(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
            alphas_cumprod: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, v target) for clean latents x0 [B, ...], noise like x0, timesteps LongTensor[B].

    Same formulas as diffusers' ``DDPMScheduler.add_noise`` / ``get_velocity``.
    """
    a = alphas_cumprod.to(x0.device)[t].float().reshape(-1, *([1] * (x0.dim() - 1)))
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    v = a.sqrt() * noise - (1 - a).sqrt() * x0
    return x_t, v


class CodecTrainingStep(nn.Module):
    """``step(waves, lengths)`` -> :class:`CodecLosses` for a codec built with its decoder.

    Holds the codec, the EMA state of its acoustic quantiser and the decoder mel front end.
    ``trainable_parameters()`` lists what the optimiser should see (LSTM, projection, UNet).
    """

    def __init__(self, codec: SemantiCodec, config: CodecTrainingConfig | None = None,
                 mel: MelConfig | None = None) -> None:
        super().__init__()
        if codec.decoder is None:
            raise ValueError("the codec has no decoder; build it with SemantiCodec(config, with_decoder=True).")
        self.config = config or CodecTrainingConfig()
        self.codec = codec
        c = codec.config
        self.quantizer = EMAVectorQuantizer(
            c.acoustic_codebook_size, c.feature_dim, decay=self.config.ema_decay, eps=self.config.ema_eps,
            dead_code_patience=self.config.dead_code_patience,
        )
        self.mel = LogMelFrontEnd(c, mel)
        self.register_buffer("alphas_cumprod", official_alphas_cumprod(c), persistent=False)
        for frozen in self.frozen_modules():
            frozen.requires_grad_(False)
        self.codec.acoustic.requires_grad_(self.config.train_encoder)
        self.codec.decoder.unet.requires_grad_(True)
        self.train()

    stage_name = "decoder"

    def frozen_modules(self) -> list[nn.Module]:
        d = self.codec.decoder
        frozen = [self.codec.audiomae, self.codec.semantic, d.vae, d.vocoder]
        # eval mode keeps the quantiser from updating its EMA codebook
        return frozen if self.config.train_encoder else [*frozen, self.codec.acoustic, self.quantizer]

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the acoustic encoder (LSTM, projection; unless ``train_encoder`` is
        False) and of the UNet."""
        if self.config.train_encoder:
            yield from self.codec.acoustic.parameters()
        yield from self.codec.decoder.unet.parameters()

    def phases(self) -> list[tuple[str, list[nn.Parameter]]]:
        """One optimiser for the whole stage (see :func:`codec.training.trainer.train_stage`)."""
        return [("decoder", list(self.trainable_parameters()))]

    def train(self, mode: bool = True) -> CodecTrainingStep:
        """Frozen parts always stay in eval mode."""
        super().train(mode)
        for frozen in self.frozen_modules():
            frozen.eval()
        return self

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None, phase: str = "decoder",
                carry: dict[str, torch.Tensor] | None = None) -> CodecLosses:
        """waves: FloatTensor[B, N] at 16 kHz, N <= one window (10.24 s with official sizes);
        lengths: valid samples per clip (default N). ``generator`` seeds t, noise, the CFG
        drop and the VAE posterior draw (on the waves' device). ``phase`` / ``carry``: the
        trainer's multi-optimiser protocol; this stage has the one phase ``decoder``."""
        if phase != "decoder":
            raise ValueError(f"phase must be 'decoder' for CodecTrainingStep, got {phase!r}.")
        codec, cfg, tc = self.codec, self.codec.config, self.config
        seg = cfg.segment_samples
        lengths = check_windows(waves, lengths, cfg)
        B, device = waves.shape[0], waves.device
        padded = F.pad(waves.float(), (0, seg - waves.shape[1]))
        padded = padded * (torch.arange(seg, device=device)[None] < lengths[:, None])

        # 1. frozen semantic path (as encode: fbank of the zero-padded window).
        with torch.no_grad():
            fbank = kaldi_fbank(padded, None, cfg, num_frames=cfg.segment_frames)
            valid = codec.valid_token_frames(fbank)
            stacked = stack_patches(codec.audiomae(fbank), cfg)
            semantic_ids = codec.semantic.quantize(stacked)
            centroids = codec.semantic.embed(semantic_ids).float()
            lstm_in = torch.cat([stacked.float(), centroids], dim=-1)

        # 2. trained (or frozen) acoustic encoder + VQ (padding frames excluded from the VQ statistics).
        frame_pos = torch.arange(cfg.tokens_per_segment, device=device)[None]
        with torch.set_grad_enabled(torch.is_grad_enabled() and tc.train_encoder):
            pre_quant = codec.acoustic(lstm_in, valid)
            vq = self.quantizer(pre_quant, codec.acoustic.codebook, frame_pos < valid[:, None])

        # 3. context as the decoder builds it (rows past the clip's token count are -1).
        n_tokens = torch.tensor([min(cfg.num_frames(int(n)), cfg.tokens_per_segment) for n in lengths.tolist()],
                                device=device)
        features = torch.cat([vq.quantized, centroids], dim=-1)
        features = torch.where((frame_pos < n_tokens[:, None])[..., None], features, torch.full_like(features, -1.0))
        drop = torch.rand(B, device=device, generator=generator) < tc.p_uncond
        features = features * (~drop).to(features.dtype)[:, None, None]
        context, _ = codec.decoder.context(features)

        # 4. target latents of the frozen VAE.
        with torch.no_grad():
            mel = self.mel(padded)
            posterior = codec.decoder.vae.encode(mel.to(next(codec.decoder.vae.parameters()).dtype)).latent_dist
            x0 = posterior.sample(generator) if tc.sample_posterior else posterior.mode()
            x0 = x0.float() * codec.decoder.scale_factor.float()

        # 5. v-prediction loss.
        t = torch.randint(0, cfg.diffusion_steps_train, (B,), device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, generator=generator)
        x_t, v = diffuse(x0, noise, t, self.alphas_cumprod)
        unet = codec.decoder.unet
        dtype = next(unet.parameters()).dtype
        pred = unet(x_t.to(dtype), t, encoder_hidden_states=context.to(dtype), return_dict=False)[0]
        diffusion = F.mse_loss(pred.float(), v)
        total = diffusion + tc.commitment_weight * vq.commitment if tc.train_encoder else diffusion
        return CodecLosses(total, diffusion, vq.commitment, vq.usage, vq.perplexity, vq.reseeded)
