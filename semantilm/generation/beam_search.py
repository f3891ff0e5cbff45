"""Beam search through ``transformers``' ``model.generate``: the one generation that does not run
the decoding loop of ``loop.generate_ids``, which keeps one hypothesis per row. No guidance, no
observer (beams are not final until the end)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.loop import ScoreFn, frame_progress
from semantilm.generation.prompts import PaddedPrompts
from semantilm.generation.settings import SamplingSettings
from semantilm.tokens.layout import AudioTokenLayout

__all__ = ["beam_search"]


def _generation_config(layout: AudioTokenLayout, max_new_tokens: int, sampling: SamplingSettings) -> Any:
    """The ``transformers.GenerationConfig`` of the ``model.generate`` call."""
    from transformers import GenerationConfig

    options: dict[str, Any] = {}
    if sampling.do_sample:
        top_p = sampling.top_p if sampling.top_p is not None else 1.0
        options = dict(temperature=sampling.temperature, top_k=sampling.top_k or 0, top_p=top_p)
    return GenerationConfig(
        disable_compile=True, max_new_tokens=max_new_tokens, do_sample=sampling.do_sample, num_beams=sampling.num_beams,
        num_return_sequences=sampling.num_return_sequences, eos_token_id=layout.audio_end_id,
        pad_token_id=layout.pad_id, bos_token_id=layout.audio_start_id, **options,
    )


class _Progress:
    """A pass-through logits processor that moves a ``frame_progress`` bar once per step."""

    def __init__(self, prompt_width: int):
        self.prompt_width = prompt_width
        self.bar: frame_progress | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.bar.step(input_ids.shape[1] - self.prompt_width + 1)
        return scores


def beam_search(
    model: Any, layout: AudioTokenLayout, prompts: PaddedPrompts, max_new_tokens: int, *,
    sampling: SamplingSettings, processors: Sequence[ScoreFn] = (), speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """The best ``sampling.num_return_sequences`` of ``sampling.num_beams`` beams per prompt
    -> sequences LongTensor[B * n, L'] (prompts first). ``speed`` gives the KV cache; the steps run eagerly."""
    from transformers import LogitsProcessorList

    tick = _Progress(prompts.ids.shape[1])
    config = _generation_config(layout, max_new_tokens, sampling)
    if speed is not None and speed.compile:
        raise ValueError("compile=True compiles the decoding loop's step; beam search runs model.generate eagerly: "
                         "use LMSpeed(kv_cache='static') without compile, or num_beams=1.")
    if speed is not None and speed.kv_cache == "static":
        config.cache_implementation = "static"
    with torch.inference_mode(), frame_progress(max_new_tokens, progress) as tick.bar:
        out = model.generate(input_ids=prompts.ids, attention_mask=prompts.mask, generation_config=config,
                             logits_processor=LogitsProcessorList([*processors, tick]))
    return out if isinstance(out, torch.Tensor) else out.sequences
