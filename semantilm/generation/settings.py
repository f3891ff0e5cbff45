"""How the LM samples: ``SamplingSettings``, one object for every generation call.

The audio entry points (``generate_audio``, ``continue_audio``, their streams) and the token-level
ones (``generate_tokens``, ``text_to_tokens``, ``continue_tokens``) take the same object, so a
setting means the same everywhere and is checked in one place, when the object is made. It sits
beside ``codec.DecodeSettings`` (how the decoder samples) and ``LMSpeed`` (how fast the LM runs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from plumbing.checks import check_float, check_int

__all__ = ["DEFAULT_GUIDANCE", "SamplingSettings", "sampling_settings"]

DEFAULT_GUIDANCE = 3.0  # classifier-free guidance where there is a caption to guide by


@dataclass(frozen=True)
class SamplingSettings:
    """What the LM writes and how much of it.

    seconds:        the most seconds of audio the LM writes per clip (a continuation's new part);
                    ``generate_tokens`` takes its frame limits per row instead.
    do_sample:      sample (True) or take the likeliest id (greedy).
    temperature:    divides the scores before sampling (> 0).
    top_k:          sample among the k likeliest ids; None or 0: no limit.
    top_p:          sample within the smallest set of ids holding this probability (0 < p <= 1); None: off.
    guidance_scale: classifier-free guidance ``uncond + s * (cond - uncond)`` on log-probabilities
                    (>= 0, 1 = off); None: 3.0 where there is a caption-less prompt to guide against
                    (text-to-audio), off where there is none (continuations, ``generate_tokens`` alone).
    num_return_sequences: clips per prompt (rows ``i * n ... i * n + n - 1`` belong to prompt i); more
                    than one needs sampling with ``top_k`` other than 1, or beams, else the takes
                    would be identical.
    num_beams:      beam search when > 1 (not with guidance, not streamed).
    seed:           seeds torch's global generator, which the LM samples from, when the call starts.
    batch_size:     prompts per LM call (each with its ``num_return_sequences`` rows).
    """

    seconds: float = 10.0
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int | None = 250
    top_p: float | None = None
    guidance_scale: float | None = None
    num_return_sequences: int = 1
    num_beams: int = 1
    seed: int | None = None
    batch_size: int = 8

    def __post_init__(self) -> None:
        check_float(self.seconds, "seconds", minimum=0, above=True)
        if not isinstance(self.do_sample, bool):
            raise TypeError(f"do_sample must be True or False, got {self.do_sample!r}.")
        check_float(self.temperature, "temperature", minimum=0, above=True)
        if self.top_k is not None:
            check_int(self.top_k, "top_k", minimum=0)
        if self.top_p is not None:
            check_float(self.top_p, "top_p", minimum=0, maximum=1, above=True)
        if self.guidance_scale is not None:
            check_float(self.guidance_scale, "guidance_scale", minimum=0)
        check_int(self.num_return_sequences, "num_return_sequences", minimum=1)
        check_int(self.num_beams, "num_beams", minimum=1)
        if self.seed is not None:
            check_int(self.seed, "seed", minimum=0, maximum=2**64 - 1)
        check_int(self.batch_size, "batch_size", minimum=1)
        self._check_takes()
        if self.num_beams > 1:
            self.check_beams(self.guidance_scale)

    def _check_takes(self) -> None:
        """A ``ValueError`` when several takes of a prompt could only be identical."""
        n = self.num_return_sequences
        if n == 1 or self.num_beams > 1:
            return
        if not self.do_sample:
            raise ValueError(
                f"num_return_sequences={n} with do_sample=False (greedy decoding) gives {n} identical takes of every "
                "prompt; set do_sample=True to sample different takes, or num_return_sequences=1."
            )
        if self.top_k == 1:
            raise ValueError(
                f"num_return_sequences={n} with top_k=1 (only the likeliest id is ever drawn) gives {n} identical "
                "takes of every prompt; use top_k >= 2 (or no top-k limit), or num_return_sequences=1."
            )

    def check_beams(self, guidance_scale: float | None) -> None:
        """A ``ValueError`` for beam search with guidance, or with more takes than beams."""
        beams, n = self.num_beams, self.num_return_sequences
        if n > beams:
            raise ValueError(f"num_return_sequences={n} must be <= num_beams={beams} with beam search.")
        if guidance_scale is not None and guidance_scale != 1:
            raise ValueError(
                f"beam search (num_beams={beams}) cannot be combined with classifier-free guidance "
                f"(guidance_scale={guidance_scale}); use num_beams=1 or guidance_scale=1."
            )

    def guidance(self, has_unconditional: bool) -> float:
        """The guidance scale of a call that has (or lacks) caption-less prompts to guide against."""
        if not has_unconditional:
            if self.guidance_scale not in (None, 1):
                raise ValueError(
                    f"guidance_scale={self.guidance_scale} needs a caption-less prompt per prompt to guide against "
                    "(text-to-audio has one; a continuation has none); use guidance_scale=None or 1."
                )
            return 1.0
        scale = DEFAULT_GUIDANCE if self.guidance_scale is None else float(self.guidance_scale)
        if self.num_beams > 1:
            self.check_beams(scale)
        return scale

    def replace(self, **changes: Any) -> SamplingSettings:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)


def sampling_settings(sampling: SamplingSettings | None) -> SamplingSettings:
    """``sampling``, or the defaults for None; a ``TypeError`` for anything else."""
    if sampling is None:
        return SamplingSettings()
    if not isinstance(sampling, SamplingSettings):
        raise TypeError(
            f"sampling must be a SamplingSettings or None, got {type(sampling).__name__}; "
            "e.g. SamplingSettings(seconds=5, temperature=0.9)."
        )
    return sampling
