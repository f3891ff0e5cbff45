"""SemantiCodec's latent diffusion decoder: token features -> waveform.

Pipeline per 10.24 s window (the official ``SemantiCodec.decode`` / ``generate_sample``):

1. feature = concat(acoustic codebook[acoustic ids], semantic centroids[semantic ids]) [n, 2D],
   padded to W rows with rows of -1;
2. context = concat(feature, sinusoidal PE[:W]) [W, 2D + positional_dim]; the unconditional
   context replaces the feature by zeros;
3. sample a latent [8, 256, 16] with DDIM (eta = 1, v-prediction) or another sampler of
   :data:`codec.sampling.SAMPLERS` and
   classifier-free guidance ``v = v_uncond + s (v_cond - v_uncond)``;
4. mel = VAE decoder(latent / scale_factor); waveform = HiFi-GAN(mel);
5. cross-fade the windows (:mod:`codec.windowing`) and trim to the clip's duration.

This module holds the steps; the loop over a call's windows (which run together, in which order
the sampler's noise is drawn, how window waveforms become clips) is :mod:`codec.decode_stream`'s,
for whole clips (:meth:`DiffusionDecoder.decode`) and for clips still being written alike. Unlike
the official loop (one window at a time, cond and uncond as two UNet calls), the windows of all
clips of a call go through the UNet together (up to ``batch_size`` windows per call) and cond /
uncond share one forward of batch 2N. The decoder does not know the encoder: it takes the two
lookup tables (acoustic VQ codebook [8192, D] and semantic centroids [V, D]) as arguments.

Precision: the decoder runs in the dtype of its parameters; the sampler state stays fp32.
With ``half_precision_norms=True`` (default) the UNet's ResBlock GroupNorms compute in fp32
under fp16/bf16, as the official ``GroupNorm32`` does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from codec.config import SemantiCodecConfig
from codec.decode_stream import WindowNoise, WindowStream, check_noise, check_token_ids
from codec.fast import fast_forms
from codec.outputs import DecodeOutput
from codec.sampling import (
    DISTILLED,
    STEP_NOISE_SAMPLERS,
    DecodeSettings,
    build_scheduler,
    check_not_settings,
    check_sampler_args,
    decode_settings,
    num_noise_draws,
    num_sampler_steps,
    variance_preserving,
)
from codec.student import distilled_sample
from codec.vocoder import vocode, vocoder_output_samples
from codec.windowing import WindowPlan, plan_windows, used_samples
from plumbing.io import pad_stack
from plumbing.progress import progress_bar

logger = logging.getLogger(__name__)


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """[length, dim] table: ``pe[:, 0::2] = sin(p w)``, ``pe[:, 1::2] = cos(p w)``,
    ``w_i = exp(-2i ln(10000) / dim)`` (float32 arithmetic, bit-equal to the official table)."""
    position = torch.arange(length).unsqueeze(1)
    freqs = torch.exp(torch.arange(0, dim, 2) * -(math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * freqs)
    pe[:, 1::2] = torch.cos(position * freqs)
    return pe


class DiffusionDecoder(nn.Module):
    """UNet + scheduler + VAE + vocoder; see the module docstring for the computation.

    Args:
        config: sizes of the variant.
        unet, vae, vocoder: the library modules; built from ``config`` (random weights) when None.
        scale_factor: the checkpoint's latent scale (``latent / scale_factor`` enters the VAE).
        half_precision_norms: compute the UNet ResBlock GroupNorms in fp32 (official behaviour).
    """

    def __init__(
        self,
        config: SemantiCodecConfig,
        unet: nn.Module | None = None,
        vae: nn.Module | None = None,
        vocoder: nn.Module | None = None,
        scale_factor: float = 1.0,
        half_precision_norms: bool = True,
    ) -> None:
        super().__init__()
        from codec.unet import build_unet, upcast_resnet_group_norms
        from codec.vae import build_vae
        from codec.vocoder import build_vocoder

        self.config = config
        self.unet = unet if unet is not None else build_unet(config)
        if half_precision_norms:
            upcast_resnet_group_norms(self.unet)
        self.vae = vae if vae is not None else build_vae(config)
        self.vocoder = vocoder if vocoder is not None else build_vocoder(config)
        self.register_buffer("scale_factor", torch.tensor(float(scale_factor)))
        self.student: nn.Module | None = None  # the distilled few-step decoder, if any (codec.student)

    @property
    def device(self) -> torch.device:
        return self.scale_factor.device

    def set_dtype(self, dtype: torch.dtype) -> DiffusionDecoder:
        """Run the UNet, the student and the VAE in ``dtype`` (e.g. ``torch.bfloat16``); the vocoder stays
        float32: in half precision it leaves a noise floor in the quiet bands (bf16 on the tiny codec:
        log-mel distance to the float32 decode 0.31, against 0.005 for a bf16 VAE). Returns the decoder."""
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype!r}.")
        for part in (self.unet, self.student, self.vae):
            if part is not None:  # nn.Module.to: diffusers' own `to` would only log about its empty fp32 list
                nn.Module.to(part, dtype)
        self.vocoder.float()
        return self

    # ----- conditioning ----------------------------------------------------------------------
    def plan_windows(self, lengths: Sequence[int]) -> WindowPlan:
        """Windows of clips with ``lengths`` token frames (official windowing), in the noise order
        (:class:`codec.windowing.WindowPlan`)."""
        return plan_windows(lengths, self.config.window_tokens, self.config.window_overlap_tokens)

    def window_features(
        self, tokens: torch.Tensor, plan: WindowPlan, acoustic_codebook: torch.Tensor,
        semantic_centroids: torch.Tensor,
    ) -> torch.Tensor:
        """[n_windows, W, 2D] features: concat(acoustic rows, semantic rows), padded with -1 rows."""
        w = self.config.window_tokens
        dim = acoustic_codebook.shape[1] + semantic_centroids.shape[1]
        out = torch.full((len(plan), w, dim), -1.0, dtype=acoustic_codebook.dtype, device=acoustic_codebook.device)
        for i, (b, (start, stop)) in enumerate(zip(plan.clip, plan.spans, strict=True)):
            ids = tokens[b, start:stop].to(acoustic_codebook.device)
            out[i, : stop - start] = torch.cat(
                [acoustic_codebook[ids[:, 1]], semantic_centroids.to(acoustic_codebook)[ids[:, 0]]], dim=-1
            )
        return out

    def context(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, uncond) cross-attention contexts [N, W, 2D + positional_dim] for features [N, W, 2D]."""
        pe = sinusoidal_table(features.shape[1], self.config.positional_dim).to(features)
        pe = pe.expand(features.shape[0], -1, -1)
        cond = torch.cat([features, pe], dim=-1)
        uncond = torch.cat([features * 0.0, pe], dim=-1)
        return cond, uncond

    # ----- diffusion -------------------------------------------------------------------------
    def guidance_context(self, cond: torch.Tensor, uncond: torch.Tensor, cfg_scale: float) -> torch.Tensor:
        """The UNet's context for ``predict``: [uncond; cond] [2N, W, E] with guidance, cond alone
        when ``cfg_scale == 1``; in the UNet's dtype."""
        dtype = next(self.unet.parameters()).dtype
        return (cond if cfg_scale == 1.0 else torch.cat([uncond, cond])).to(dtype)

    def predict(self, latents: torch.Tensor, timestep: int | float | torch.Tensor, context: torch.Tensor,
                cfg_scale: float) -> torch.Tensor:
        """Guided v-prediction for latents [N, C, H, W] (fp32): one UNet forward of batch 2N
        (uncond first, then cond), or N when ``cfg_scale == 1``; context from ``guidance_context``.
        ``timestep``: one for every window, or a LongTensor [N] of one each (the distill stage's teacher)."""
        dtype = next(self.unet.parameters()).dtype
        x = latents if cfg_scale == 1.0 else torch.cat([latents, latents])
        if isinstance(timestep, torch.Tensor):
            t = timestep if cfg_scale == 1.0 else torch.cat([timestep, timestep])
        else:
            t_dtype = torch.long if float(timestep).is_integer() else torch.float32  # fractional: Euler-type spacings
            t = torch.full((x.shape[0],), timestep, dtype=t_dtype, device=x.device)
        out = self.unet(x.to(dtype), t, encoder_hidden_states=context, return_dict=False)[0].float()
        if cfg_scale == 1.0:
            return out
        v_uncond, v_cond = out.chunk(2)
        return v_uncond + cfg_scale * (v_cond - v_uncond)

    def sample(
        self, cond: torch.Tensor, uncond: torch.Tensor, noise: torch.Tensor, *, steps: int, sampler: str = "ddim",
        cfg_scale: float = 2.0, eta: float = 1.0, bar: Any | None = None,
    ) -> torch.Tensor:
        """Final latents [N, C, H, W] (fp32) of N windows.

        noise: [N, draws, C, H, W], ``draws = num_noise_draws(sampler, steps)``; ``[:, 0]`` is x_T
        and ``[:, i]`` the noise DDIM adds at its step i (unused when eta == 0); ``bar`` advances per step.
        ``sampler="distilled"``: the student's k-step sample (:func:`codec.student.distilled_sample`).
        """
        if sampler == DISTILLED:
            return distilled_sample(self, cond, noise, steps, cfg_scale, bar)
        scheduler = build_scheduler(self.config, sampler, steps, device=cond.device)
        latents = noise[:, 0].float() * scheduler.init_noise_sigma
        context = self.guidance_context(cond, uncond, cfg_scale)
        with fast_forms(self.unet, context=context):  # the same context at every step
            for i, t in enumerate(scheduler.timesteps):
                model_t = int(t) if float(t).is_integer() else float(t)
                v = self.predict(scheduler.scale_model_input(latents, t), model_t, context, cfg_scale)
                if sampler in STEP_NOISE_SAMPLERS:
                    extra = {"eta": eta, "variance_noise": noise[:, i + 1].float()} if eta > 0 else {"eta": 0.0}
                    latents = scheduler.step(v, int(t), latents, return_dict=False, **extra)[0]
                else:
                    latents = scheduler.step(v, t, latents, return_dict=False)[0]
                if bar is not None:
                    bar.update(1)
        return variance_preserving(scheduler, latents)

    def latents_to_mel(self, latents: torch.Tensor) -> torch.Tensor:
        """Log-mel [N, 1, frames, mel_bins] (the VAE's output, in its dtype) of latents [N, C, H, W]."""
        vae_dtype = next(self.vae.parameters()).dtype
        latents = (latents / self.scale_factor).to(vae_dtype)
        with fast_forms(self.vae):
            return self.vae.decode(latents, return_dict=False)[0].contiguous()  # whatever layout the fast form chose

    def latents_to_waveform(
        self, latents: torch.Tensor, samples: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mel [N, 1, frames, mel_bins], waveform [N, samples]) of latents [N, C, H, W]; fp32 out.

        samples: how many leading samples of each window's waveform are wanted (default all);
        the rest of those rows is zeros (see :func:`codec.vocoder.vocode`).
        """
        mel = self.latents_to_mel(latents)
        return mel.float(), vocode(self.vocoder, self.config, mel.squeeze(1), samples)

    def used_samples(self, plan: WindowPlan, lengths: Sequence[int]) -> list[int]:
        """Samples of each window's waveform that reach its clip's output (:func:`codec.windowing.used_samples`)."""
        c = self.config
        return used_samples(plan.clip, [c.num_samples(int(n)) for n in lengths],
                            vocoder_output_samples(c, c.segment_frames), c.window_overlap_samples)

    def sample_windows(self, features: torch.Tensor, settings: DecodeSettings, noise: WindowNoise, *,
                       batch_size: int, bar: Any | None = None) -> torch.Tensor:
        """Final latents [N, C, H, W] (fp32) of windows with features [N, W, 2D], ``batch_size`` windows per
        UNet call; each window's draws come from ``noise`` in turn (so the windows come in the noise order)."""
        cfg_scale = self.config.cfg_scale if settings.cfg_scale is None else float(settings.cfg_scale)
        latents = []
        for lo in range(0, features.shape[0], batch_size):
            cond, uncond = self.context(features[lo : lo + batch_size])
            latents.append(self.sample(cond, uncond, noise.take(cond.shape[0]), steps=settings.steps,
                                       sampler=settings.sampler, cfg_scale=cfg_scale, eta=settings.ddim_eta, bar=bar))
        return torch.cat(latents).float()

    # ----- public entry points ---------------------------------------------------------------
    @torch.inference_mode()
    def decode(
        self,
        tokens: torch.Tensor,
        acoustic_codebook: torch.Tensor,
        semantic_centroids: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        settings: DecodeSettings | None = None,
        *,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 16,
        progress: bool | None = None,
    ) -> DecodeOutput:
        """Waveforms of token sequences: every clip fed whole to one :class:`codec.decode_stream.WindowStream`.

        Args:
            tokens: LongTensor [B, T, 2] (or [T, 2]); ``[..., 0]`` semantic, ``[..., 1]`` acoustic ids.
            acoustic_codebook: [acoustic_codebook_size, D] VQ codebook rows.
            semantic_centroids: [V, D] semantic k-means centroids.
            lengths: valid frames per clip (default: T for every clip).
            settings: sampler, steps, guidance scale and eta (:class:`codec.sampling.DecodeSettings`;
                default ``DecodeSettings()``: official DDIM, 50 steps, eta 1, ``config.cfg_scale``).
            generator: torch.Generator for the sampler's draws, window by window in the noise order
                of :mod:`codec.decode_stream` (window index, then clip), so results do not depend on
                ``batch_size`` and a stream of the same clips draws the same.
            noise: all draws, [n_windows, draws, C, H, W] in that order (a size-1 axis after ``draws``
                is accepted); ``draws = steps + 1`` for DDIM when steps divides 1000, 1 for the
                deterministic samplers (which also accept steps + 1 and use only x_T).
            batch_size: windows per UNet call (the UNet sees twice as many with CFG).
            progress: bars over the UNet steps and VAE + vocoder batches (None: on a terminal only).
        Returns:
            DecodeOutput with audio [B, N] (zero-padded) and lengths [B].
        """
        tokens, lengths_list = self._check_tokens(tokens, lengths, acoustic_codebook, semantic_centroids)
        settings, noise = self._check_call(settings, generator, noise, batch_size, len(self.plan_windows(lengths_list)))
        stream = WindowStream(self, acoustic_codebook, semantic_centroids, len(lengths_list), settings,
                              generator=generator, noise=noise, batch_size=batch_size, progress=progress)
        clips: list[list[torch.Tensor]] = [[] for _ in lengths_list]
        for piece in stream.feed([t[:n] for t, n in zip(tokens, lengths_list, strict=True)], [True] * len(clips)):
            clips[piece.row].append(piece.audio)
        audio, out_lengths = pad_stack([torch.cat(parts) for parts in clips])
        return DecodeOutput(audio=audio, lengths=out_lengths, sample_rate=self.config.sample_rate)

    @torch.no_grad()
    def decode_latents(
        self,
        tokens: torch.Tensor,
        acoustic_codebook: torch.Tensor,
        semantic_centroids: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        settings: DecodeSettings | None = None,
        *,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 16,
        progress: bool | None = False,
    ) -> tuple[torch.Tensor, WindowPlan, list[int]]:
        """The sampled VAE latents of token sequences, before the VAE and vocoder: (latents
        [n_windows, C, H, W] fp32 in the plan's order, the window plan, valid frames per clip). Arguments
        as :meth:`decode` (the same draws), but no bar by default. For training stages that need mels."""
        c = self.config
        tokens, lengths_list = self._check_tokens(tokens, lengths, acoustic_codebook, semantic_centroids)
        plan = self.plan_windows(lengths_list)
        settings, noise = self._check_call(settings, generator, noise, batch_size, len(plan))
        draws = WindowNoise(self, num_noise_draws(settings.sampler, settings.steps, c.diffusion_steps_train),
                            generator, noise)
        features = self.window_features(tokens, plan, acoustic_codebook.to(self.device).float(),
                                        semantic_centroids.to(self.device).float())
        steps = num_sampler_steps(settings.sampler, settings.steps, c.diffusion_steps_train)
        with progress_bar(total=-(-len(plan) // batch_size) * steps, desc=f"{settings.sampler} ({len(plan)} windows)",
                          unit="step", progress=progress) as bar:
            return self.sample_windows(features, settings, draws, batch_size=batch_size, bar=bar), plan, lengths_list

    def draw_noise(self, n_windows: int, draws: int, generator: torch.Generator | None,
                   device: torch.device | str) -> torch.Tensor:
        """[n_windows, draws, C, H, W] standard normal draws, window by window (fp32)."""
        c = self.config
        shape = (draws, c.latent_channels, c.latent_time, c.latent_freq)
        gen_device = generator.device if generator is not None else device
        return torch.stack([torch.randn(shape, generator=generator, device=gen_device) for _ in range(n_windows)]).to(
            device
        )

    # ----- validation ------------------------------------------------------------------------
    def _check_call(self, settings: DecodeSettings | None, generator: torch.Generator | None,
                    noise: torch.Tensor | None, batch_size: Any, n_windows: int) -> tuple[DecodeSettings, torch.Tensor | None]:
        """The settings (default ``DecodeSettings()``) and the checked noise of a decode call."""
        settings = decode_settings(settings)
        check_sampler_args(settings.sampler, settings.steps, self.config.diffusion_steps_train)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        if noise is not None and generator is not None:
            raise ValueError("pass either noise= or generator=, not both.")
        return settings, check_noise(noise, self.config, settings, n_windows)

    def _check_tokens(
        self, tokens: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None, acoustic_codebook: torch.Tensor,
        semantic_centroids: torch.Tensor,
    ) -> tuple[torch.Tensor, list[int]]:
        c = self.config
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"tokens must be a torch.LongTensor [B, T, 2], got {type(tokens).__name__}.")
        if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"tokens must hold integer ids (torch.long), got dtype {tokens.dtype}.")
        if tokens.dim() == 2:
            tokens = tokens.unsqueeze(0)
        if tokens.dim() != 3 or tokens.shape[-1] != 2:
            raise ValueError(
                f"tokens must have shape [B, T, 2] ([..., 0] semantic, [..., 1] acoustic), got {tuple(tokens.shape)}."
            )
        if tokens.shape[0] == 0 or tokens.shape[1] == 0:
            raise ValueError(f"tokens is empty (shape {tuple(tokens.shape)}); decode needs at least one frame.")
        for name, table, width in (("acoustic_codebook", acoustic_codebook, c.feature_dim),
                                   ("semantic_centroids", semantic_centroids, c.feature_dim)):
            if not isinstance(table, torch.Tensor) or table.dim() != 2 or table.shape[1] != width:
                shape = tuple(table.shape) if isinstance(table, torch.Tensor) else type(table).__name__
                raise ValueError(f"{name} must be a tensor [rows, feature_dim={width}], got {shape}.")
        b, t = tokens.shape[:2]
        lengths_t = torch.as_tensor([t] * b if lengths is None else check_not_settings(lengths, "lengths"))
        if lengths_t.dim() != 1 or lengths_t.shape[0] != b or lengths_t.is_floating_point():
            raise ValueError(f"lengths must be {b} integers (one per clip), got {lengths!r}.")
        lengths_list = [int(n) for n in lengths_t]
        bad = [n for n in lengths_list if not 1 <= n <= t]
        if bad:
            raise ValueError(f"lengths must be between 1 and T={t} (tokens.shape[1]); got {lengths_list}.")
        valid = torch.arange(t, device=tokens.device)[None, :] < torch.tensor(lengths_list, device=tokens.device)[:, None]
        check_token_ids(tokens[..., 0][valid], tokens[..., 1][valid], semantic_centroids.shape[0],
                        acoustic_codebook.shape[0])
        return tokens.long(), lengths_list
