"""Classifier-free guidance in one forward: the decoding loop of guided generation.

MusicGen-style batch doubling: the conditional rows and their unconditional twins run as one
batch ``[2B, L]`` through one model call per step, with one KV cache. Both halves are
left-padded to a common width; position ids count real tokens only, so each row sees the same
positions it would see alone. Each step the two halves' log-probabilities are mixed as
``uncond + scale * (cond - uncond)`` (what ``ClassifierFreeGuidanceLogitsProcessor`` returns),
then the logits processors (the audio-token constraint) and the sampling warpers (temperature,
top-k, top-p, in ``transformers``' order) run on the mixed scores, and the next id goes to both
halves. With the same prompts, settings and seed, it writes what ``model.generate`` with the
two-call processor writes, up to float noise in the batched matmuls.

The loop calls ``model(input_ids=, attention_mask=, position_ids=, <cache>=, use_cache=True)``
directly (the cache keyword is ``cache`` in recent ``transformers``, ``past_key_values`` in
older ones), so it does not depend on ``generate``'s internals.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from semantilm.generation.lm_speed import LMSpeed, StepRunner
from semantilm.generation.packed_linears import packed_linears

__all__ = ["guided_generate", "sampling_warpers", "frame_progress"]

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sampling_warpers(
    do_sample: bool, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> list[ScoreFn]:
    """The score warpers ``model.generate`` applies when it samples, in its order: temperature,
    top-k, top-p (``transformers``' own classes). Greedy decoding has none."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    if not do_sample:
        return []
    warpers: list[ScoreFn] = []
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p is not None and top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return warpers


class frame_progress:  # noqa: N801 - used like a function, as a context manager
    """A tqdm bar over generated frames (two LM ids each), updated from the decoding step.

    total_ids: the most new ids a row may write; the bar counts ``total_ids // 2`` frames.
    enabled:   None: shown only when stderr is a terminal; or a bool (``plumbing.progress``).
    """

    def __init__(self, total_ids: int, enabled: bool | None = None, desc: str = "generate"):
        from plumbing.progress import progress_bar

        self.total = max(int(total_ids) // 2, 1)
        self.bar = progress_bar(total=self.total, desc=desc, unit="frame", progress=enabled)

    def step(self, ids_written: int) -> None:
        """Report that each unfinished row has written ``ids_written`` new ids so far."""
        frames = min(ids_written // 2, self.total)
        if frames > self.bar.n:
            self.bar.update(frames - self.bar.n)

    def __enter__(self) -> frame_progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


def _forward_keywords(model: Any) -> tuple[str, bool]:
    """(the model's KV-cache keyword, whether it takes ``logits_to_keep``)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def _doubled_batch(
    cond_ids: torch.Tensor, cond_mask: torch.Tensor, uncond_ids: torch.Tensor, uncond_mask: torch.Tensor,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditional rows then unconditional rows, left-padded to one width -> (ids, mask) [2B, W]."""
    width = max(cond_ids.shape[1], uncond_ids.shape[1])

    def widen(t: torch.Tensor, fill: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (width - t.shape[1], 0), value=fill)

    ids = torch.cat([widen(cond_ids, pad_id), widen(uncond_ids.to(cond_ids.device), pad_id)])
    mask = torch.cat([widen(cond_mask, 0), widen(uncond_mask.to(cond_mask.device), 0)])
    return ids, mask


def guided_generate(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    unconditional_ids: torch.Tensor,
    unconditional_mask: torch.Tensor,
    guidance_scale: float,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    processors: Sequence[ScoreFn] = (),
    warpers: Sequence[ScoreFn] = (),
    do_sample: bool = True,
    progress: bool | None = None,
    generator: torch.Generator | None = None,
    speed: LMSpeed | None = None,
) -> torch.Tensor:
    """Generate with classifier-free guidance, both branches in one forward per step.

    input_ids, attention_mask:             LongTensor[B, L] left-padded conditional prompts.
    unconditional_ids, unconditional_mask: LongTensor[B, L_u] left-padded unconditional prompts.
    guidance_scale:   s in ``uncond + s * (cond - uncond)`` on log-probabilities (finite, >= 0).
    processors:       called as ``p(ids, scores)`` on the guided log-probs, ids LongTensor[B, L + t]
                      (the conditional prompts and what was generated so far).
    warpers:          then applied when sampling (``sampling_warpers``).
    generator:        draws the samples (None: torch's global generator, as ``generate``).
    speed:            KV cache and compilation of the steps (``lm_speed.LMSpeed``; None: dynamic, eager).
    returns:          LongTensor[B, L + T], the prompts followed by the new ids; a row ends with
                      ``eos_token_id`` and is padded with ``pad_token_id`` after it; T <= max_new_tokens.
    """
    if not (isinstance(guidance_scale, (int, float)) and math.isfinite(guidance_scale) and guidance_scale >= 0):
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}.")
    if unconditional_ids.shape[0] != input_ids.shape[0]:
        raise ValueError(f"{unconditional_ids.shape[0]} unconditional prompts for {input_ids.shape[0]} prompts.")
    rows = input_ids.shape[0]
    speed = speed or LMSpeed()
    cache_arg, keep_arg = _forward_keywords(model)
    step_ids, mask = _doubled_batch(input_ids, attention_mask, unconditional_ids, unconditional_mask, pad_token_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    runner = StepRunner(model, speed, mask, max_new_tokens, cache_arg, {"logits_to_keep": 1} if keep_arg else {})
    sequences = input_ids
    unfinished = torch.ones(rows, dtype=torch.bool, device=input_ids.device)
    packed = nullcontext() if speed.compile else packed_linears(model)  # compiled steps pack their own
    with torch.inference_mode(), packed, frame_progress(max_new_tokens, progress) as bar:
        for step in range(max_new_tokens):
            logprobs = torch.log_softmax(runner(step_ids, positions).float(), dim=-1)
            cond, uncond = logprobs[:rows], logprobs[rows:]
            scores = uncond + guidance_scale * (cond - uncond)
            for fn in (*processors, *(warpers if do_sample else ())):
                scores = fn(sequences, scores)
            if do_sample:
                probs = torch.softmax(scores, dim=-1)
                new = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
            else:
                new = torch.argmax(scores, dim=-1)
            new = torch.where(unfinished, new, torch.full_like(new, pad_token_id))
            sequences = torch.cat([sequences, new[:, None]], dim=1)
            unfinished &= new != eos_token_id
            bar.step(step + 1)
            if not bool(unfinished.any()):
                break
            step_ids = torch.cat([new, new])[:, None]
            runner.grow()
            positions = positions[:, -1:] + 1
    return sequences
