"""The test oracle of the decoding loop: ``model.generate`` with the constraint and, for guidance, a
logits processor that calls the model a second time per step on the unconditional rows. The library
runs guidance in one forward (``semantilm.generation.loop``); this older two-call form is kept here
only to check that the loop writes what it writes."""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from plumbing.io import pad_stack
from semantilm.generation.loop import forward_keywords
from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.generation.prompts import prompt_batch
from semantilm.generation.settings import SamplingSettings


class TwoCallGuidance(LogitsProcessor):
    """Classifier-free guidance with its own KV cache of the unconditional rows (caption-less
    prompts followed by the ids generated so far): ``uncond + scale * (cond - uncond)`` on log-probs.

    unconditional_ids, unconditional_mask: LongTensor[B, L_u], left-padded.
    prompt_length: L, the width of the conditional prompts given to ``generate``.
    """

    def __init__(self, model: Any, unconditional_ids: torch.Tensor, unconditional_mask: torch.Tensor,
                 guidance_scale: float, prompt_length: int):
        if not (isinstance(guidance_scale, (int, float)) and math.isfinite(guidance_scale) and guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}.")
        self.model, self.scale, self.prompt_length = model, float(guidance_scale), int(prompt_length)
        self._pending, self._mask, self._fed, self._cache = unconditional_ids, unconditional_mask, 0, None
        self._cache_arg = forward_keywords(model)[0]

    def _unconditional_logprobs(self, input_ids: torch.Tensor) -> torch.Tensor:
        new = input_ids[:, self.prompt_length + self._fed :]
        self._fed += new.shape[1]
        step = torch.cat([self._pending, new], dim=1) if self._pending is not None else new
        self._mask = torch.cat([self._mask, torch.ones_like(new)], dim=1)
        self._pending = None
        positions = (self._mask.cumsum(-1) - 1).clamp(min=0)[:, -step.shape[1] :]
        out = self.model(input_ids=step, attention_mask=self._mask, position_ids=positions, use_cache=True,
                         **{self._cache_arg: self._cache})
        self._cache = out.get(self._cache_arg)
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        cond = torch.log_softmax(scores.float(), dim=-1)
        uncond = self._unconditional_logprobs(input_ids)
        return uncond + self.scale * (cond - uncond)


def two_call_tokens(
    model: Any, layout: Any, prompts: list[list[int]], max_frames: int,
    unconditional: list[list[int]] | None = None, guidance_scale: float = 1.0,
    sampling: SamplingSettings | None = None, min_frames: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codec tokens of ``model.generate`` (+ ``TwoCallGuidance`` when ``guidance_scale != 1``), one
    row per prompt, drawn from torch's global generator."""
    sampling = sampling or SamplingSettings()
    rows = torch.full((len(prompts),), max_frames)
    unconditional = unconditional if guidance_scale != 1 else None
    batch, max_new = prompt_batch(model, layout, prompts, rows, unconditional=unconditional)
    processors: list[Any] = [AudioTokenConstraintLogitsProcessor(layout, rows, min_frames)]
    if unconditional is not None:
        processors.insert(0, TwoCallGuidance(model, batch.unconditional, batch.unconditional_mask, guidance_scale,
                                             batch.ids.shape[1]))
    options = {}
    if sampling.do_sample:
        options = dict(temperature=sampling.temperature, top_k=sampling.top_k or 0,
                       top_p=sampling.top_p if sampling.top_p is not None else 1.0)
    config = GenerationConfig(max_new_tokens=max_new, do_sample=sampling.do_sample, eos_token_id=layout.audio_end_id,
                              pad_token_id=layout.pad_id, bos_token_id=layout.audio_start_id, disable_compile=True,
                              **options)
    with torch.inference_mode():
        out = model.generate(input_ids=batch.ids, attention_mask=batch.mask, generation_config=config,
                             logits_processor=LogitsProcessorList(processors))
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    return pad_stack([layout.last_span_tokens(row)[0] for row in sequences])
