"""What ``generate_tokens`` does around the decoding loop: checks its arguments and prompts,
pads prompts into batches, sizes the run, builds the ``transformers.GenerationConfig`` and cuts
the generated audio spans back into codec tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from plumbing.checks import check_float, check_int
from plumbing.io import pad_sequences, pad_stack
from semantilm.tokens.layout import AUDIO_START, AudioTokenLayout

__all__ = [
    "per_row", "positive_int", "check_sampling", "check_takes", "check_prompts", "max_new_tokens_for", "left_padded",
    "generation_config", "generated_tokens", "ProgressProcessor",
]


def per_row(value: int | Sequence[int], rows: int) -> torch.Tensor:
    """An int or one int per row -> LongTensor[rows]."""
    return torch.as_tensor(value, dtype=torch.long).expand(rows).clone()


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else the ``ValueError`` / ``TypeError`` of :func:`plumbing.checks.check_int`."""
    return check_int(value, name, minimum=1)


def check_sampling(do_sample: bool, temperature: float, top_k: int | None, top_p: float | None,
                   num_return_sequences: int = 1, num_beams: int = 1) -> None:
    """A ``ValueError`` for sampling settings ``generate`` would reject or misread, or that would
    give identical takes (:func:`check_takes`)."""
    check_takes(do_sample, top_k, num_return_sequences, num_beams)
    if not do_sample:
        return
    check_float(temperature, "temperature", minimum=0, above=True)
    if top_k is not None:
        check_int(top_k, "top_k", minimum=0)
    if top_p is not None:
        check_float(top_p, "top_p", minimum=0, maximum=1, above=True)


def check_takes(do_sample: bool, top_k: int | None, num_return_sequences: int, num_beams: int = 1) -> None:
    """A ``ValueError`` when several takes of a prompt could only be identical: greedy decoding, or
    sampling from the likeliest id alone (``top_k=1``). Beam search returns distinct beams."""
    n = num_return_sequences
    if n == 1 or num_beams > 1:
        return
    if not do_sample:
        raise ValueError(
            f"num_return_sequences={n} with do_sample=False (greedy decoding) gives {n} identical takes of every "
            "prompt; set do_sample=True to sample different takes, or num_return_sequences=1."
        )
    if top_k == 1:
        raise ValueError(
            f"num_return_sequences={n} with top_k=1 (only the likeliest id is ever drawn) gives {n} identical takes "
            "of every prompt; use top_k >= 2 (or no top-k limit), or num_return_sequences=1."
        )


def check_prompts(layout: AudioTokenLayout, prompts: Sequence[Sequence[int]]) -> list[int]:
    """Validate every prompt (ids in the vocabulary, an open audio span the pattern can
    continue); returns the number of audio ids each prompt already holds."""
    audio_ids = []
    for i, p in enumerate(prompts):
        p_t = torch.as_tensor(list(p), dtype=torch.long)
        layout.validate_ids(p_t, f"prompts[{i}]")
        starts = (p_t == layout.audio_start_id).nonzero()
        if starts.numel() == 0:
            raise ValueError(f"prompts[{i}] has no {AUDIO_START!r} id ({layout.audio_start_id}).")
        span = p_t[int(starts[-1]) + 1 :]
        if span.numel():
            layout.check_prompt_span(span, f"prompts[{i}]")
        audio_ids.append(span.numel())
    return audio_ids


def max_new_tokens_for(
    model: Any, prompts: Sequence[Sequence[int]], max_frames: torch.Tensor, audio_in_prompts: list[int],
    unconditional_prompts: Sequence[Sequence[int]] | None = None,
) -> int:
    """New ids that let every row reach ``max_frames`` and write ``<|audio_end|>``; a
    ``ValueError`` when the longest prompt (conditional or unconditional) plus them exceeds the
    model's context."""
    needed = [2 * int(m) - s + 1 for m, s in zip(max_frames.tolist(), audio_in_prompts, strict=True)]
    max_new_tokens = max(needed)
    context = getattr(model.config, "max_position_embeddings", None)
    for kind, group in (("prompts", prompts), ("unconditional_prompts", unconditional_prompts or [])):
        if not group:
            continue
        longest = max(range(len(group)), key=lambda i: len(group[i]))
        if context is not None and len(group[longest]) + max_new_tokens > context:
            raise ValueError(
                f"{kind}[{longest}] has {len(group[longest])} ids and needs up to {max_new_tokens} new ids "
                f"({int(max_frames.max())} frames), more than the model's context of {context}; "
                "shorten the prompt or ask for fewer seconds."
            )
    return max_new_tokens


def left_padded(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids LongTensor[B, L] left-padded with ``pad_id``, attention mask LongTensor[B, L])."""
    ids = pad_sequences(prompts, pad_id, side="left").to(device)
    mask = pad_sequences([[1] * len(p) for p in prompts], 0, side="left").to(device)
    return ids, mask


def generation_config(
    layout: AudioTokenLayout, max_new_tokens: int, do_sample: bool, temperature: float,
    top_k: int | None, top_p: float | None, num_beams: int = 1, num_return_sequences: int = 1,
):
    """The ``transformers.GenerationConfig`` of one ``model.generate`` call."""
    from transformers import GenerationConfig

    check_sampling(do_sample, temperature, top_k, top_p)
    sampling: dict[str, Any] = {}
    if do_sample:
        sampling = dict(temperature=temperature, top_k=top_k or 0, top_p=top_p if top_p is not None else 1.0)
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        eos_token_id=layout.audio_end_id,
        pad_token_id=layout.pad_id,
        bos_token_id=layout.audio_start_id,
        **sampling,
    )


def last_audio_span(layout: AudioTokenLayout, row: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(audio ids after the last ``<|audio_start|>`` of ``row`` up to the first non-audio id,
    whether such an id has ended the span)."""
    start = int((row == layout.audio_start_id).nonzero()[-1])
    span = row[start + 1 :]
    stop = (~layout.is_audio(span)).nonzero()
    if stop.numel():
        return span[: int(stop[0])], True
    return span, False


def generated_tokens(layout: AudioTokenLayout, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The last audio span of each row of ``sequences`` LongTensor[B, L] -> (codec tokens
    LongTensor[B, T, 2], zero after each row's frames, frame lengths LongTensor[B])."""
    return pad_stack([layout.span_to_tokens(last_audio_span(layout, row)[0]) for row in sequences.cpu()])


class ProgressProcessor:
    """A pass-through logits processor that moves a ``guided.frame_progress`` bar: ``generate``
    calls it once per step with the ids so far (``prompt_width`` of them are the prompt's)."""

    def __init__(self, bar: Any, prompt_width: int):
        self.bar = bar
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.bar.step(input_ids.shape[1] - self.prompt_width + 1)
        return scores
