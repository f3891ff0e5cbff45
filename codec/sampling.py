"""Diffusion samplers of the decoder: diffusers schedulers by name, on the official schedule.

Every sampler is one row of :data:`SAMPLER_SPECS` (a diffusers scheduler class and its
arguments), configured for the official v-prediction schedule
``betas = linspace(sqrt(0.0015), sqrt(0.0195), 1000) ** 2``.

The official sampler is the LDM ``DDIMSampler`` (v-prediction, eta = 1 in ``decode``).
diffusers' ``DDIMScheduler`` with ``leading`` spacing, ``steps_offset=1`` and
``set_alpha_to_one=False`` implements the same update and the same sigma
(``eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))``), with two differences that
:func:`build_scheduler` removes:

* timesteps: the official takes ``arange(0, 1000, 1000 // S) + 1`` (visited in reverse), which
  has ``ceil(1000 / (1000 // S))`` entries, more than S when S does not divide 1000 (S = 30
  runs 31 steps); diffusers takes S entries. We set the official list. The step size
  ``1000 // S`` (used for the previous timestep) is the same in both.
* precision: diffusers forms ``alphas_cumprod`` by a float32 cumulative product; the official
  forms it in float64 and rounds once. We set the float64-derived table.

The other samplers are deterministic multistep ODE solvers (they draw only x_T), built with the
official betas as ``trained_betas``; Karras sigmas stay off. The official DDIM ends at the noise
level of t = 0 (``alphas_cumprod[0]``), not at sigma 0; so do the solvers added here
(``final_sigmas_type="sigma_min"``; DEIS always does), which lets them converge to the
deterministic DDIM: ending at sigma 0 leaves a distance of about ``sqrt(1 - alphas_cumprod[0])``
(~0.04 relative) however many steps run. ``"dpmsolver++"`` (2M ending at sigma 0) keeps the
behaviour of saved configs. Stochastic samplers other than DDIM (ancestral, SDE) are refused.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from codec.config import SemantiCodecConfig


class SamplerSpec(NamedTuple):
    """A sampler: a diffusers scheduler class name and its arguments beyond the official schedule."""

    scheduler: str
    kwargs: dict[str, Any]
    about: str
    log_snr_spacing: bool = False  # timesteps uniform in log-SNR (:func:`log_snr_timesteps`)


# Start at t = 999 (x_T), end at the noise level of t = 0 like the official DDIM. DPM-Solver++ takes
# a first-order last step: the last interval is long in log-SNR and a multistep extrapolation over
# it loses accuracy (it stops converging at 20+ steps).
_LAST_AT_T0 = {"timestep_spacing": "trailing", "final_sigmas_type": "sigma_min"}
_DPM = {"algorithm_type": "dpmsolver++", "euler_at_final": True, "final_sigmas_type": "sigma_min"}

SAMPLER_SPECS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec(
        "DDIMScheduler",
        dict(timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False, clip_sample=False),
        "official DDIM; stochastic with eta (official 1), deterministic with eta 0",
    ),
    "dpmsolver++": SamplerSpec(
        "DPMSolverMultistepScheduler",
        dict(algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True),
        "DPM-Solver++ 2M ending at sigma 0 (as saved configs and earlier releases use it)",
    ),
    "dpm++2m": SamplerSpec(
        "DPMSolverMultistepScheduler", dict(solver_order=2, timestep_spacing="trailing", **_DPM), "DPM-Solver++ 2M"
    ),
    "dpm++3m": SamplerSpec(
        "DPMSolverMultistepScheduler", dict(solver_order=3, timestep_spacing="trailing", **_DPM), "DPM-Solver++ 3M"
    ),
    "dpm++2m-logsnr": SamplerSpec(
        "DPMSolverMultistepScheduler", dict(solver_order=2, **_DPM), "DPM-Solver++ 2M, steps uniform in log-SNR",
        log_snr_spacing=True,
    ),
    "unipc": SamplerSpec(
        "UniPCMultistepScheduler", dict(solver_order=2, solver_type="bh2", **_LAST_AT_T0), "UniPC (bh2, order 2)"
    ),
    "deis": SamplerSpec("DEISMultistepScheduler", dict(solver_order=3, timestep_spacing="trailing"), "DEIS (order 3)"),
    "euler": SamplerSpec("EulerDiscreteScheduler", dict(_LAST_AT_T0), "Euler (k-diffusion sigmas)"),
}
SAMPLERS = tuple(SAMPLER_SPECS)
# The codec's distilled student (codec.student): a few-step sampler of its own UNet, no scheduler.
DISTILLED = "distilled"
DECODE_SAMPLERS = (*SAMPLERS, DISTILLED)  # every name DecodeSettings.sampler takes
# Samplers that add fresh Gaussian noise at every step (taken from ``noise[:, 1:]``); only they take ``eta``.
STEP_NOISE_SAMPLERS = ("ddim",)
OFFICIAL_ETA = 1.0  # the official decode's DDIM noise scale


@dataclass(frozen=True)
class DecodeSettings:
    """How the diffusion decoder samples: one object for every decode entry point.

    sampler:   a name of :data:`SAMPLERS`: "ddim" (official; stochastic with ``eta``) or a
               deterministic multistep solver ("dpm++2m", "dpm++3m", "dpm++2m-logsnr", "unipc",
               "deis", "euler", "dpmsolver++"; good with 10-25 steps). See :data:`SAMPLER_SPECS`.
               Or "distilled": the codec's distilled student (:mod:`codec.student`), ``steps`` one of
               the counts it was trained for (e.g. 1, 2, 4), guidance folded in.
    steps:     sampler steps, 1..1000 (DDIM runs ``ceil(1000 / (1000 // steps))`` like the official code).
    cfg_scale: classifier-free guidance scale; None takes the codec's ``config.cfg_scale`` (official 2.0).
    eta:       DDIM noise scale (0 makes DDIM deterministic); None takes the official 1.0. Only DDIM
               adds noise at each step: an eta given with another sampler is a ``ValueError``, not
               silently ignored.
    """

    sampler: str = "ddim"
    steps: int = 50
    cfg_scale: float | None = None
    eta: float | None = None

    def __post_init__(self) -> None:
        check_sampler_args(self.sampler, self.steps)
        for name in ("cfg_scale", "eta"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}.")
        if self.eta is not None and self.sampler not in STEP_NOISE_SAMPLERS:
            raise ValueError(
                f"eta={self.eta!r} only applies to the ddim sampler; sampler={self.sampler!r} is deterministic (it adds "
                "no noise per step) and would ignore it: leave eta unset (None), or use sampler='ddim'."
            )

    @property
    def ddim_eta(self) -> float:
        """The noise scale DDIM samples with: ``eta``, or the official 1.0 when it is unset."""
        return OFFICIAL_ETA if self.eta is None else float(self.eta)


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


def check_not_settings(value: Any, name: str, signature: str = "") -> Any:
    """``value``, or a ``TypeError`` when decode settings landed in the positional parameter ``name``
    (e.g. ``codec.decode(tokens, DecodeSettings(...))`` fills ``lengths``): pass them as ``settings=``."""
    if isinstance(value, DecodeSettings) or (isinstance(value, dict) and set(value) & {"sampler", "steps", "eta"}):
        where = f"; the parameters are {signature}" if signature else ""
        raise TypeError(
            f"{name} got decode settings ({value!r}){where}: pass them by keyword, settings=DecodeSettings(...)."
        )
    return value


def refuse_loose_settings(given: dict[str, Any], where: str) -> None:
    """A ``TypeError`` for keywords a decode call does not take (``given``: what its ``**`` caught); the
    sampler's fields get a pointer to ``settings=DecodeSettings(...)``, where they live."""
    if not given:
        return
    fields = [name for name in given if name in {f.name for f in dataclasses.fields(DecodeSettings)}]
    if len(fields) < len(given):
        raise TypeError(f"{where}() got unexpected keyword arguments {sorted(set(given) - set(fields))}.")
    wanted = ", ".join(f"{name}={given[name]!r}" for name in fields)
    raise TypeError(
        f"{where}() takes the sampler's settings as one object: pass settings=DecodeSettings({wanted}) instead of "
        f"{', '.join(f'{name}=' for name in fields)} (dataclasses.replace(settings, ...) changes one field of settings)."
    )


def official_betas(config: SemantiCodecConfig) -> torch.Tensor:
    """float64 betas of the official schedule."""
    import torch

    n = config.diffusion_steps_train
    return torch.linspace(config.beta_start**0.5, config.beta_end**0.5, n, dtype=torch.float64) ** 2


def official_alphas_cumprod(config: SemantiCodecConfig) -> torch.Tensor:
    """float32 cumulative alphas, computed in float64 and rounded once (as the official buffer)."""
    import torch

    return torch.cumprod(1.0 - official_betas(config), dim=0).to(torch.float32)


def official_ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """Timesteps the official DDIM visits for ``steps``, in visiting (descending) order.

    When ``1000 // steps`` divides 999 (steps 3, 9, 27, 37, 101..111, 250..333, 1000), the official list
    ends in 1000, which is outside the 1000-entry schedule and makes the official sampler raise
    an IndexError; we drop that entry instead.
    """
    import numpy as np

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
    """Gaussian draws per window: x_T, plus one per step for the stochastic DDIM (eta > 0), plus one
    per step after the first for the distilled student (it re-noises between steps)."""
    evaluations = num_sampler_steps(sampler, steps, num_train_timesteps)
    if sampler == DISTILLED:
        return evaluations
    return evaluations + 1 if sampler in STEP_NOISE_SAMPLERS else 1


def check_sampler_args(sampler: Any, steps: Any, num_train_timesteps: int = 1000) -> None:
    """ValueError / TypeError for an unknown sampler or a step count outside 1..num_train_timesteps."""
    if not isinstance(sampler, str) or sampler not in DECODE_SAMPLERS:
        raise ValueError(
            f"sampler={sampler!r} is not supported; use one of {', '.join(DECODE_SAMPLERS)} (stochastic samplers "
            "other than ddim, e.g. ancestral or SDE ones, are not available)."
        )
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an int, got {type(steps).__name__} ({steps!r}).")
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps={steps} must be between 1 and {num_train_timesteps}.")


def build_scheduler(config: SemantiCodecConfig, sampler: str, steps: int, device: torch.device | str = "cpu"):
    """A diffusers scheduler for ``sampler`` (a :data:`SAMPLER_SPECS` name) with its timesteps set for ``steps``."""
    import diffusers
    import torch

    check_sampler_args(sampler, steps, config.diffusion_steps_train)
    spec = SAMPLER_SPECS[sampler]
    scheduler = getattr(diffusers, spec.scheduler)(
        num_train_timesteps=config.diffusion_steps_train,
        trained_betas=official_betas(config).to(torch.float32).numpy(),
        prediction_type="v_prediction",
        **spec.kwargs,
    )
    if sampler == "ddim":
        scheduler.alphas_cumprod = official_alphas_cumprod(config)
        scheduler.final_alpha_cumprod = scheduler.alphas_cumprod[0]
        scheduler.set_timesteps(steps, device=device)
        scheduler.timesteps = torch.from_numpy(official_ddim_timesteps(steps, config.diffusion_steps_train)).to(device)
        return scheduler
    if spec.log_snr_spacing:
        scheduler.set_timesteps(device=device, timesteps=log_snr_timesteps(config, steps))
    else:
        scheduler.set_timesteps(steps, device=device)
    return scheduler


def log_snr_timesteps(config: SemantiCodecConfig, steps: int) -> list[int]:
    """``steps`` distinct integer timesteps, descending from 999, uniform in log-SNR between t = 999
    and t = 0 with t = 0 itself left out (the last step goes to its noise level): short steps
    where the signal is clean, long ones in the noise."""
    import numpy as np

    alphas_cumprod = official_alphas_cumprod(config).double().numpy()
    log_snr = np.log(alphas_cumprod / (1 - alphas_cumprod))  # decreasing in t
    n = len(alphas_cumprod)
    targets = np.linspace(log_snr[-1], log_snr[0], steps + 1)[:-1]
    timesteps = np.interp(-targets, -log_snr, np.arange(n)).round().astype(np.int64)
    lowest = 1 if steps < n else 0  # t = 0 would be a step of length 0
    for i in reversed(range(steps)):  # distinct: push rounded duplicates up, then cap below 999
        timesteps[i] = max(timesteps[i], lowest if i == steps - 1 else timesteps[i + 1] + 1)
    return [int(min(t, n - 1 - i)) for i, t in enumerate(timesteps)]


def variance_preserving(scheduler: Any, latents: torch.Tensor) -> torch.Tensor:
    """The final ``latents`` of ``scheduler`` in the variance-preserving scale the VAE decodes.

    Sigma-scaled schedulers (Euler: ``init_noise_sigma != 1``) carry ``x0 + sigma eps``; at a
    last sigma above 0 that is ``sqrt(1 + sigma^2)`` times the VP sample ``sqrt(a) x0 + sqrt(1 - a) eps``.
    """
    if float(scheduler.init_noise_sigma) == 1.0:
        return latents
    sigma_last = float(scheduler.sigmas[-1])
    return latents / math.sqrt(1.0 + sigma_last**2)
