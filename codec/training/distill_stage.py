"""Training stage ``distill``: a few-step student of the diffusion decoder (:mod:`codec.student`).

Latent consistency distillation (Luo et al. 2023) with the guidance folded in, on the audio of a
corpus encoded on the fly. Per batch of 16 kHz windows:

1. tokens of each window from the frozen encoder (the decoder stage's frozen path, quantised
   as ``encode`` quantises), and the decoder's conditional context of them (rows past the
   window's token count -1, as the decoder builds it);
2. x0 = VAE latent (posterior mode) of the window's log-mel times ``scale_factor``;
3. a step n of the teacher's DDIM grid (official 50 steps: t_n = 1 + 20 n), drawn uniformly;
   x_t = sqrt(a_t) x0 + sqrt(1 - a_t) e at t = t_n;
4. the teacher (the codec's decoder UNet, frozen) takes one deterministic DDIM step from t_n to
   t_{n-1} with classifier-free guidance at ``guidance_scale`` (uncond and cond in one forward);
   from t_0 it steps to the level of t = 0, where its 50-step sampler ends;
5. loss = d(f(x_{t_n}, t_n), f_target(x_{t_{n-1}}, t_{n-1})), f the student's consistency
   function; at n = 0 the target is the teacher's step itself (the boundary). ``f_target``: an EMA
   of the student (decay ``target_ema``, LCM's 0.95), without gradient; it is part of the stage's
   state, so checkpoints hold it and a resumed run continues exactly. ``target_ema: 0`` takes the
   student itself (improved consistency training, Song & Dhariwal 2023).

Only the student's UNet is trained; the codec (teacher included) stays frozen. The trained
student is saved with the codec (``student.safetensors``) and decodes with
``DecodeSettings(sampler="distilled", steps=k)`` for k in ``step_counts``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from codec.fbank import kaldi_fbank
from codec.mel import LogMelFrontEnd
from codec.model import SemantiCodec
from codec.student import DEFAULT_STEP_COUNTS, DistilledStudent
from codec.training.losses import check_windows, diffuse
from plumbing.config_file import check_field_types

__all__ = ["DistillConfig", "DistillLosses", "DistillTrainingStep"]


@dataclass
class DistillConfig:
    """Hyper-parameters of the distill stage (the ``distill`` section of a codec recipe config).

    guidance_scale: the teacher's guidance scale folded into the student (null: the codec's
        ``cfg_scale``, official 2.0; decoding with the student uses that scale).
    teacher_steps: the teacher's DDIM grid the student learns to skip along (official 50).
    step_counts: the sampling step counts the student is made for (``DecodeSettings.steps``).
    target_ema: EMA decay of the target network (LCM's 0.95; 0: the student itself, no copy).
    from_student: continue training the codec's own student (same guidance scale, grid and step
        counts) instead of starting from a copy of the teacher UNet.
    loss: ``l2`` (mean squared) or ``huber`` (pseudo-Huber, ``sqrt(d^2 + c^2) - c`` per element).
    huber_c: the pseudo-Huber ``c``.
    """

    guidance_scale: float | None = None
    teacher_steps: int = 50
    step_counts: tuple[int, ...] = DEFAULT_STEP_COUNTS
    target_ema: float = 0.95
    from_student: bool = False
    loss: Literal["l2", "huber"] = "l2"
    huber_c: float = 0.001

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.guidance_scale is not None and not self.guidance_scale >= 1.0:
            raise ValueError(f"guidance_scale must be >= 1 (1: no guidance) or null, got {self.guidance_scale}.")
        if not 2 <= self.teacher_steps <= 1000:
            raise ValueError(f"teacher_steps must be between 2 and 1000, got {self.teacher_steps}.")
        if not self.step_counts or any(not 1 <= k <= self.teacher_steps for k in self.step_counts):
            raise ValueError(f"step_counts must be step counts between 1 and teacher_steps={self.teacher_steps}, "
                             f"got {self.step_counts}.")
        if not 0.0 <= self.target_ema < 1.0:
            raise ValueError(f"target_ema must be in [0, 1), got {self.target_ema}.")
        if self.huber_c <= 0:
            raise ValueError(f"huber_c must be positive, got {self.huber_c}.")


@dataclass
class DistillLosses:
    """total (with graph) and the mean timestep of the batch (a check that steps are drawn)."""

    total: torch.Tensor
    mean_t: float

    def as_dict(self) -> dict[str, float]:
        return {"loss": float(self.total.detach()), "mean_t": self.mean_t}


class DistillTrainingStep(nn.Module):
    """``step(waves, lengths)`` -> :class:`DistillLosses`; trains only ``codec.decoder.student``.

    The student starts as a copy of the teacher UNet, or is the codec's own (``from_student``).
    """

    stage_name = "distill"

    def __init__(self, codec: SemantiCodec, config: DistillConfig | None = None) -> None:
        super().__init__()
        if codec.decoder is None:
            raise ValueError("the codec has no decoder to distil; load it with its decoder.")
        self.config = config or DistillConfig()
        self.codec = codec
        decoder = codec.decoder
        scale = codec.config.cfg_scale if self.config.guidance_scale is None else self.config.guidance_scale
        student = decoder.student
        wanted = (float(scale), tuple(sorted(set(self.config.step_counts))), self.config.teacher_steps)
        if not self.config.from_student or student is None:
            student = None
        elif (student.guidance_scale, student.step_counts, student.teacher_steps) != wanted:
            raise ValueError(f"distill.from_student: the codec's student has guidance scale {student.guidance_scale}, "
                             f"step counts {student.step_counts} and grid {student.teacher_steps}, not {wanted}; "
                             "set the distill section to match, or from_student: false to start from the teacher.")
        if student is None:
            student = DistilledStudent.from_teacher(decoder, guidance_scale=scale, step_counts=self.config.step_counts,
                                                    teacher_steps=self.config.teacher_steps)
        codec.requires_grad_(False)
        decoder.student = student.requires_grad_(True)
        # The EMA target network: part of this module's state (checkpoints, exact resume), not of the codec.
        self.target = copy.deepcopy(student).requires_grad_(False).eval() if self.config.target_ema > 0 else None
        self.mel = LogMelFrontEnd(codec.config)
        self.train()

    def train(self, mode: bool = True) -> DistillTrainingStep:
        """Only the student follows ``mode``; the codec (teacher) stays in eval mode."""
        super().train(mode)
        self.codec.eval()
        self.codec.decoder.student.train(mode)
        if self.target is not None:
            self.target.eval()
        return self

    def phases(self) -> list[tuple[str, list[nn.Parameter]]]:
        return [("distill", list(self.codec.decoder.student.parameters()))]

    @torch.no_grad()
    def context_and_latents(self, waves: torch.Tensor,
                            lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cond, uncond contexts [B, W, E], x0 [B, C, H, W]) of validated windows (frozen codec)."""
        from codec.encoding import encode_segments

        codec, cfg = self.codec, self.codec.config
        device = waves.device
        seg = cfg.segment_samples
        padded = F.pad(waves.float(), (0, seg - waves.shape[1]))
        padded = padded * (torch.arange(seg, device=device)[None] < lengths[:, None])
        enc = encode_segments(codec, kaldi_fbank(padded, None, cfg, num_frames=cfg.segment_frames), False)
        features = torch.cat([codec.acoustic.codebook[enc.acoustic], codec.semantic.centroids[enc.semantic]], -1).float()
        n_tokens = torch.tensor([min(cfg.num_frames(int(n)), cfg.tokens_per_segment) for n in lengths.tolist()],
                                device=device)
        inside = torch.arange(cfg.tokens_per_segment, device=device)[None] < n_tokens[:, None]
        features = torch.where(inside[..., None], features, torch.full_like(features, -1.0))
        cond, uncond = codec.decoder.context(features)
        vae = codec.decoder.vae
        x0 = vae.encode(self.mel(padded).to(next(vae.parameters()).dtype)).latent_dist.mode()
        return cond, uncond, x0.float() * codec.decoder.scale_factor.float()

    @torch.no_grad()
    def teacher_step(self, x_t: torch.Tensor, t: torch.Tensor, s_alpha: torch.Tensor, cond: torch.Tensor,
                     uncond: torch.Tensor) -> torch.Tensor:
        """One deterministic guided DDIM step of the teacher from timesteps ``t`` to the noise
        level ``s_alpha`` ([B, 1, 1, 1] cumulative alphas)."""
        decoder, student = self.codec.decoder, self.codec.decoder.student
        w = student.guidance_scale
        v = decoder.predict(x_t, t, decoder.guidance_context(cond, uncond, w), w)  # the decoder's guided v
        a = student.alpha(t)
        x0 = a.sqrt() * x_t - (1 - a).sqrt() * v
        eps = a.sqrt() * v + (1 - a).sqrt() * x_t
        return s_alpha.sqrt() * x0 + (1 - s_alpha).sqrt() * eps

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None, phase: str = "distill",
                carry: dict[str, torch.Tensor] | None = None) -> DistillLosses:
        """waves: FloatTensor[B, N] at 16 kHz (N <= one segment); ``generator`` draws the grid
        steps and the noise (on the waves' device)."""
        if phase != "distill":
            raise ValueError(f"phase must be 'distill' for DistillTrainingStep, got {phase!r}.")
        lengths = check_windows(waves, lengths, self.codec.config)
        student = self.codec.decoder.student
        cond, uncond, x0 = self.context_and_latents(waves, lengths)
        device, batch = x0.device, x0.shape[0]
        grid = torch.tensor(student.grid(), device=device)
        n = torch.randint(0, len(grid), (batch,), device=device, generator=generator)
        t, s = grid[n], grid[(n - 1).clamp(min=0)]
        noise = torch.randn(x0.shape, device=device, generator=generator)
        x_t, _ = diffuse(x0, noise, t, student.alphas_cumprod)
        s_alpha = torch.where((n > 0).reshape(-1, 1, 1, 1), student.alpha(s), student.alpha(torch.zeros_like(s)))
        x_s = self.teacher_step(x_t, t, s_alpha, cond, uncond)
        with torch.no_grad():
            if self.target is not None and self.training:  # EMA of the student after the previous update
                for ema, param in zip(self.target.parameters(), student.parameters(), strict=True):
                    ema.lerp_(param.detach(), 1.0 - self.config.target_ema)
            network = self.target if self.target is not None else student
            target = torch.where((n > 0).reshape(-1, 1, 1, 1), network(x_s, s, cond), x_s)
        pred = student(x_t, t, cond)
        if self.config.loss == "huber":
            c = self.config.huber_c
            total = ((pred - target).pow(2) + c * c).sqrt().sub(c).mean()
        else:
            total = F.mse_loss(pred, target)
        return DistillLosses(total, float(t.float().mean()))
