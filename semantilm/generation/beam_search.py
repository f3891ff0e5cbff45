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
        max_new_tokens=max_new_tokens, do_sample=sampling.do_sample, num_beams=sampling.num_beams,
        num_return_sequences=sampling.num_return_sequences, eos_token_id=layout.audio_end_id,
        pad_token_id=layout.pad_id, bos_token_id=layout.audio_start_id, **options,
    )


def _speed_config(config: Any, speed: LMSpeed, device: torch.device) -> Any:
    """``config`` set up to run ``model.generate`` with ``speed``'s cache and compilation."""
    if speed.kv_cache == "static":
        config.cache_implementation = "static"
    if not speed.compile:
        config.disable_compile = True
        return config
    try:
        from transformers import CompileConfig
    except ImportError:
        raise ValueError(
            "compile=True with beam search runs through model.generate, which needs a transformers that has "
            "CompileConfig; upgrade transformers or drop compile."
        ) from None
    compile_config = CompileConfig(backend=speed.compile_backend, dynamic=False,
                                   mode=speed.mode_for(device) or "default")
    compile_config._compile_all_devices = True  # honour the request off CUDA too
    config.compile_config = compile_config
    return config


class _Progress:
    """A pass-through logits processor that moves a ``frame_progress`` bar once per step."""

    def __init__(self, bar: frame_progress, prompt_width: int):
        self.bar, self.prompt_width = bar, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.bar.step(input_ids.shape[1] - self.prompt_width + 1)
        return scores


def beam_search(
    model: Any, layout: AudioTokenLayout, prompts: PaddedPrompts, max_new_tokens: int, *,
    sampling: SamplingSettings, processors: Sequence[ScoreFn] = (), speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """The best ``sampling.num_return_sequences`` of ``sampling.num_beams`` beams per prompt
    -> sequences LongTensor[B * n, L'] (prompts first)."""
    from transformers import LogitsProcessorList

    speed = speed or LMSpeed()
    config = _speed_config(_generation_config(layout, max_new_tokens, sampling), speed, prompts.ids.device)
    with torch.inference_mode(), speed.packing(model), frame_progress(max_new_tokens, progress) as bar:
        out = model.generate(
            input_ids=prompts.ids, attention_mask=prompts.mask, generation_config=config,
            logits_processor=LogitsProcessorList([*processors, _Progress(bar, prompts.ids.shape[1])]),
        )
    return out if isinstance(out, torch.Tensor) else out.sequences
