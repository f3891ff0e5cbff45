"""A few-step student of the diffusion decoder: latent consistency distillation, guidance folded in.

The student is a UNet of the teacher's architecture, started from the teacher's weights and
trained by :mod:`codec.training.distill_stage` (latent consistency distillation, Luo et al. 2023,
with the official guided 50-step DDIM as the teacher's solver). It maps a noisy latent ``x_t`` at
any timestep of the teacher's 50-step grid straight to the end of the teacher's guided trajectory:

    f(x, t) = c_skip(t) x + c_out(t) x0(x, t),   x0 = sqrt(a_t) x - sqrt(1 - a_t) v_student(x, t, cond)

with the LCM boundary scalings (``sigma_data = 0.5``, timesteps scaled by 10), so ``f`` is the
identity at t = 0. It sees the conditional context only: the guidance scale it was distilled
with (the codec's ``cfg_scale``, official 2.0) is part of what it learned, so one UNet pass per
step replaces the teacher's two.

Sampling with k steps (:meth:`DistilledStudent.sample`, the decoder's ``sampler="distilled"``):
x = x_T; for each of the k timesteps, x0 = f(x, t), then x = sqrt(a_next) x0 + sqrt(1 - a_next) z
with a fresh draw z before the next step (the consistency models' multistep sampler). Draws per
window: k (x_T and one per later step).

The student is stored next to the codec's weights in ``student.safetensors`` (its own file, so
codecs without one are unchanged); its metadata holds the method, guidance scale, teacher grid
and the step counts it was trained for.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codec.sampling import official_alphas_cumprod, official_ddim_timesteps

__all__ = ["STUDENT_NAME", "DistilledStudent", "save_student", "load_student", "export_student", "distilled_sample",
           "save_with_student", "attach_saved_student"]

logger = logging.getLogger(__name__)

STUDENT_NAME = "student.safetensors"
METHOD = "latent-consistency-distillation"
SIGMA_DATA = 0.5  # LCM boundary scalings
TIMESTEP_SCALING = 10.0
DEFAULT_STEP_COUNTS = (1, 2, 4)
TRAIN_HINT = ("train one with the codec recipe's distill stage (stage: distill, e.g. "
              "configs/recipes/codec/tiny_trained/distill.yaml) and decode with the codec folder it writes")


def boundary_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) of the consistency function at timesteps ``t`` (float tensor)."""
    scaled = t.float() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2).sqrt()
    return c_skip, c_out


class DistilledStudent(nn.Module):
    """The student UNet and what it was distilled for.

    Args:
        config: the codec's config (the UNet's sizes and the noise schedule).
        unet: the student UNet (default: built from ``config``, random weights).
        guidance_scale: the teacher's guidance scale the student folds in.
        step_counts: the sampling step counts it was trained for (``steps`` must be one of them).
        teacher_steps: the teacher's DDIM grid (official 50: timesteps 1, 21, ..., 981).
    """

    def __init__(self, config: Any, unet: nn.Module | None = None, *, guidance_scale: float = 2.0,
                 step_counts: Sequence[int] = DEFAULT_STEP_COUNTS, teacher_steps: int = 50) -> None:
        super().__init__()
        from codec.unet import build_unet, upcast_resnet_group_norms

        counts = tuple(sorted({int(k) for k in step_counts}))
        if not counts or any(k < 1 or k > teacher_steps for k in counts):
            raise ValueError(f"step_counts must be step counts between 1 and teacher_steps={teacher_steps}, "
                             f"got {tuple(step_counts)}.")
        if not guidance_scale >= 1.0:
            raise ValueError(f"guidance_scale must be >= 1 (1: no guidance), got {guidance_scale}.")
        self.config = config
        self.unet = upcast_resnet_group_norms(unet if unet is not None else build_unet(config))
        self.guidance_scale = float(guidance_scale)
        self.step_counts = counts
        self.teacher_steps = int(teacher_steps)
        self.register_buffer("alphas_cumprod", official_alphas_cumprod(config), persistent=False)

    @classmethod
    def from_teacher(cls, decoder: nn.Module, *, guidance_scale: float, step_counts: Sequence[int] = DEFAULT_STEP_COUNTS,
                     teacher_steps: int = 50) -> DistilledStudent:
        """A student whose UNet is a copy of the decoder's (the distillation's starting point)."""
        unet = copy.deepcopy(decoder.unet)
        student = cls(decoder.config, unet, guidance_scale=guidance_scale, step_counts=step_counts,
                      teacher_steps=teacher_steps)
        return student.to(decoder.device).requires_grad_(True)

    # ----- the schedule ----------------------------------------------------------------------
    def grid(self) -> list[int]:
        """The teacher's DDIM timesteps, ascending (1, 21, ..., 981 for 50 steps)."""
        return [int(t) for t in official_ddim_timesteps(self.teacher_steps, self.config.diffusion_steps_train)[::-1]]

    def timesteps(self, steps: int) -> list[int]:
        """The ``steps`` timesteps of a k-step sample, descending, evenly spaced on the grid from its top."""
        self.check_steps(steps)
        grid = self.grid()
        return [grid[len(grid) * (steps - i) // steps - 1] for i in range(steps)]

    def check_steps(self, steps: int) -> None:
        """ValueError unless ``steps`` is one of the step counts the student was trained for."""
        if steps not in self.step_counts:
            raise ValueError(f"the codec's distilled decoder was trained for steps {list(self.step_counts)}, not "
                             f"steps={steps}; use DecodeSettings(sampler='distilled', steps=k) with k one of them "
                             f"(or {TRAIN_HINT.split(' (')[0]} with distill.step_counts including {steps}).")

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """``alphas_cumprod`` at integer timesteps ``t`` [B], shaped [B, 1, 1, 1] (fp32)."""
        return self.alphas_cumprod.to(t.device)[t].float().reshape(-1, 1, 1, 1)

    # ----- the consistency function ----------------------------------------------------------
    def forward(self, latents: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """f(x_t, t) [B, C, H, W] (fp32) for latents [B, C, H, W], timesteps LongTensor[B] and the
        conditional context [B, W, E]."""
        dtype = next(self.unet.parameters()).dtype
        v = self.unet(latents.to(dtype), t, encoder_hidden_states=context.to(dtype), return_dict=False)[0].float()
        a = self.alpha(t)
        x0 = a.sqrt() * latents.float() - (1 - a).sqrt() * v
        c_skip, c_out = boundary_scalings(t)
        return c_skip.reshape(-1, 1, 1, 1) * latents.float() + c_out.reshape(-1, 1, 1, 1) * x0

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, noise: torch.Tensor, steps: int, bar: Any | None = None) -> torch.Tensor:
        """Final latents [N, C, H, W] (fp32): ``steps`` consistency steps from ``noise[:, 0]``;
        ``noise[:, i]`` re-noises before step i (noise: [N, steps, C, H, W])."""
        from codec.fast import fast_forms

        timesteps = self.timesteps(steps)
        if noise.shape[1] < steps:
            raise ValueError(f"the distilled sampler needs {steps} noise draws per window, got {noise.shape[1]}.")
        x = noise[:, 0].float()
        context = cond.to(next(self.unet.parameters()).dtype)
        with fast_forms(self.unet, context=context):
            for i, t in enumerate(timesteps):
                t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                x0 = self(x, t_batch, context)
                if i + 1 < steps:
                    a = self.alphas_cumprod[timesteps[i + 1]].float()
                    x = a.sqrt() * x0 + (1 - a).sqrt() * noise[:, i + 1].float().to(x0.device)
                if bar is not None:
                    bar.update(1)
        return x0

    # ----- storage ---------------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        """What the file's safetensors metadata records (strings)."""
        return {"method": METHOD, "guidance_scale": repr(self.guidance_scale),
                "step_counts": json.dumps(list(self.step_counts)), "teacher_steps": str(self.teacher_steps)}


def distilled_sample(decoder: nn.Module, cond: torch.Tensor, noise: torch.Tensor, steps: int, cfg_scale: float,
                     bar: Any | None = None) -> torch.Tensor:
    """The decoder's ``sampler="distilled"``: its student's k-step sample, after checking that the
    codec has a student, trained for ``steps``, with the guidance scale asked for."""
    student = getattr(decoder, "student", None)
    if student is None:
        raise ValueError(f"sampler='distilled' needs a distilled decoder and this codec has none; {TRAIN_HINT}, "
                         "or use sampler='ddim'.")
    student.check_steps(steps)
    if abs(float(cfg_scale) - student.guidance_scale) > 1e-6:
        raise ValueError(f"the distilled decoder folds in guidance scale {student.guidance_scale:g} and cannot "
                         f"sample with cfg_scale={cfg_scale:g}; leave cfg_scale unset, or use sampler='ddim'.")
    return student.sample(cond, noise, steps, bar)


def save_student(folder: str | Path, student: DistilledStudent | None, dtype: torch.dtype | None = None) -> None:
    """Write ``student.safetensors`` into ``folder`` (``dtype``: cast floating tensors); remove a
    stale one when ``student`` is None, so a folder never pairs a codec with another's student."""
    from safetensors.torch import save_file

    path = Path(folder) / STUDENT_NAME
    if student is None:
        path.unlink(missing_ok=True)
        return
    state = {k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
             for k, v in student.unet.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=student.metadata())
    tmp.replace(path)
    from plumbing.io import follow_umask

    follow_umask(path)  # as every file the toolkit writes


def load_student(folder: str | Path, config: Any) -> DistilledStudent | None:
    """The student saved in ``folder`` (fp32), or None when there is none; ValueError for a file
    that is not a student of this codec."""
    from safetensors import SafetensorError, safe_open

    from codec.convert.state_dict import check_state_dict

    path = Path(folder) / STUDENT_NAME
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k).float() for k in f.keys()}
        if meta.get("method") != METHOD:
            raise ValueError(f"its metadata names method {meta.get('method')!r}, not {METHOD!r}")
        options = dict(guidance_scale=float(meta["guidance_scale"]), step_counts=json.loads(meta["step_counts"]),
                       teacher_steps=int(meta["teacher_steps"]))
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise ValueError(f"could not read the distilled decoder {str(path)!r}: {err}. Train it again with the distill "
                         "stage, or delete the file to use the codec without it.") from err
    with torch.device("meta"):
        student = DistilledStudent(config, **options)
    check_state_dict(student.unet.state_dict(), state, f"distilled decoder {str(path)!r}",
                     hint="The student must have the decoder UNet's sizes; train it for this codec.")
    student.unet.load_state_dict(state, strict=True, assign=True)
    student.register_buffer("alphas_cumprod", official_alphas_cumprod(config), persistent=False)
    return student.requires_grad_(False).eval()


def export_student(source: str | Path, out: str | Path, dtype: torch.dtype) -> None:
    """Copy the student of the codec folder ``source`` (if any) to ``out`` in ``dtype``."""
    from codec.config import SemantiCodecConfig

    student = load_student(source, SemantiCodecConfig.from_json_file(Path(source) / "config.json"))
    save_student(out, student, dtype)


def save_with_student(folder: str | Path, config: Any, state: dict[str, torch.Tensor], decoder: nn.Module | None) -> None:
    """``SemantiCodec.save_pretrained``: the codec's weights without the student's in ``model.safetensors``,
    the student (the decoder's, or none) in ``student.safetensors``."""
    from codec.checkpoints import save_native

    save_native(folder, config, {k: v for k, v in state.items() if not k.startswith("decoder.student.")})
    save_student(folder, getattr(decoder, "student", None) if decoder is not None else None)


def attach_saved_student(model: nn.Module, folder: str | Path) -> None:
    """Give the decoder of a codec loaded from ``folder`` the student saved there, if any."""
    if model.decoder is not None:
        student = load_student(folder, model.config)
        model.decoder.student = student.to(model.decoder.device) if student is not None else None
