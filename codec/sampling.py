"""Diffusion samplers of the decoder: the official DDIM and DPM-Solver++, on diffusers schedulers.

The official sampler is the LDM ``DDIMSampler`` (v-prediction, eta = 1 in ``decode``) on a
schedule ``betas = linspace(sqrt(0.0015), sqrt(0.0195), 1000) ** 2`` computed in float64.
diffusers' ``DDIMScheduler`` with ``scaled_linear`` betas, ``leading`` spacing, ``steps_offset=1``
and ``set_alpha_to_one=False`` implements the same update and the same sigma
(``eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))``), with two differences that
:func:`build_scheduler` removes:

* timesteps: the official takes ``arange(0, 1000, 1000 // S) + 1`` (visited in reverse), which
  has ``ceil(1000 / (1000 // S))`` entries, more than S when S does not divide 1000 (S = 30
  runs 31 steps); diffusers takes S entries. We set the official list. The step size
  ``1000 // S`` (used for the previous timestep) is the same in both.
* precision: diffusers forms ``alphas_cumprod`` by a float32 cumulative product; the official
  forms it in float64 and rounds once. We set the float64-derived table.

DPM-Solver++ (2nd order multistep, diffusers ``DPMSolverMultistepScheduler``) is the
fewer-step option; it is deterministic given x_T (it draws no noise after x_T).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from codec.config import SemantiCodecConfig

SAMPLERS = ("ddim", "dpmsolver++")


@dataclass(frozen=True)
class DecodeSettings:
    """How the diffusion decoder samples: one object for every decode entry point.

    sampler:   "ddim" (official; stochastic with ``eta``) or "dpmsolver++" (deterministic, good
               with 10-25 steps).
    steps:     sampler steps, 1..1000 (DDIM runs ``ceil(1000 / (1000 // steps))`` like the official code).
    cfg_scale: classifier-free guidance scale; None takes the codec's ``config.cfg_scale`` (official 2.0).
    eta:       DDIM noise scale (official 1.0; 0 makes DDIM deterministic).
    """

    sampler: str = "ddim"
    steps: int = 50
    cfg_scale: float | None = None
    eta: float = 1.0

    def __post_init__(self) -> None:
        check_sampler_args(self.sampler, self.steps)
        for name in ("cfg_scale", "eta"):
            value = getattr(self, name)
            if value is None and name == "cfg_scale":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}.")


def decode_settings(settings: DecodeSettings | None = None, **changes: Any) -> DecodeSettings:
    """``settings`` (default ``DecodeSettings()``) with the fields in ``changes`` that are not None
    replaced; the result validates itself, so a bad value raises DecodeSettings' error."""
    if settings is None:
        settings = DecodeSettings()
    elif not isinstance(settings, DecodeSettings):
        raise TypeError(f"settings must be a codec.sampling.DecodeSettings, got {type(settings).__name__}.")
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(DecodeSettings)})
    if unknown:
        raise TypeError(f"{unknown} are not decode settings; DecodeSettings has sampler, steps, cfg_scale, eta.")
    given = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(settings, **given) if given else settings


def official_betas(config: SemantiCodecConfig) -> torch.Tensor:
    """float64 betas of the official schedule."""
    n = config.diffusion_steps_train
    return torch.linspace(config.beta_start**0.5, config.beta_end**0.5, n, dtype=torch.float64) ** 2


def official_alphas_cumprod(config: SemantiCodecConfig) -> torch.Tensor:
    """float32 cumulative alphas, computed in float64 and rounded once (as the official buffer)."""
    return torch.cumprod(1.0 - official_betas(config), dim=0).to(torch.float32)


def official_ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """Timesteps the official DDIM visits for ``steps``, in visiting (descending) order.

    When ``1000 // steps`` divides 999 (steps 3, 9, 27, 37, 101..111, 250..333, 1000), the official list
    ends in 1000, which is outside the 1000-entry schedule and makes the official sampler raise
    an IndexError; we drop that entry instead.
    """
    stride = num_train_timesteps // steps
    timesteps = np.arange(0, num_train_timesteps, stride) + 1
    return timesteps[timesteps < num_train_timesteps][::-1].copy()


def num_sampler_steps(sampler: str, steps: int, num_train_timesteps: int = 1000) -> int:
    """UNet evaluations (per CFG branch) the sampler runs for ``steps``."""
    check_sampler_args(sampler, steps, num_train_timesteps)
    if sampler == "ddim":
        return len(official_ddim_timesteps(steps, num_train_timesteps))
    return steps


def num_noise_draws(sampler: str, steps: int, num_train_timesteps: int = 1000) -> int:
    """Gaussian draws per window: x_T, plus one per step for the stochastic DDIM (eta > 0)."""
    if sampler == "ddim":
        return num_sampler_steps(sampler, steps, num_train_timesteps) + 1
    check_sampler_args(sampler, steps, num_train_timesteps)
    return 1


def check_sampler_args(sampler: Any, steps: Any, num_train_timesteps: int = 1000) -> None:
    """ValueError / TypeError for an unknown sampler or a step count outside 1..num_train_timesteps."""
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not supported; use one of {SAMPLERS}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an int, got {type(steps).__name__} ({steps!r}).")
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps={steps} must be between 1 and {num_train_timesteps}.")


def build_scheduler(config: SemantiCodecConfig, sampler: str, steps: int, device: torch.device | str = "cpu"):
    """A diffusers scheduler for ``sampler`` with its timesteps set for ``steps``."""
    check_sampler_args(sampler, steps, config.diffusion_steps_train)
    common = dict(
        num_train_timesteps=config.diffusion_steps_train,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
    )
    if sampler == "ddim":
        from diffusers import DDIMScheduler

        scheduler = DDIMScheduler(
            **common, timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False, clip_sample=False
        )
        scheduler.alphas_cumprod = official_alphas_cumprod(config)
        scheduler.final_alpha_cumprod = scheduler.alphas_cumprod[0]
        scheduler.set_timesteps(steps, device=device)
        scheduler.timesteps = torch.from_numpy(official_ddim_timesteps(steps, config.diffusion_steps_train)).to(device)
        return scheduler
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(
        **common,
        trained_betas=official_betas(config).to(torch.float32).numpy(),
        algorithm_type="dpmsolver++",
        solver_order=2,
        lower_order_final=True,
    )
    scheduler.set_timesteps(steps, device=device)
    return scheduler
