"""Token-level generation: LM ids -> codec tokens (``generate_tokens``, ``text_to_tokens``,
``continue_tokens``); ``generate`` and ``stream`` turn these tokens into waveforms.

Everything ``generate_tokens`` returns decodes: the ``AudioTokenConstraintLogitsProcessor``
keeps every audio span in the layout's token pattern and ends it within the frame limits; a
span cut short anyway is truncated to whole frames. Rows run ``sampling.batch_size`` prompts at a
time through the decoding loop (``loop.generate_ids``; beam search through ``model.generate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from plumbing.io import pad_stack
from semantilm.generation.beam_search import beam_search
from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.loop import generate_ids
from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.generation.prompts import continuation_prompts, prompt_batch, text_prompts
from semantilm.generation.settings import SamplingSettings, sampling_settings
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["generate_tokens", "text_to_tokens", "continue_tokens"]


def generate_tokens(
    model: Any,
    layout: AudioTokenLayout,
    prompts: Sequence[Sequence[int]],
    max_frames: int | Sequence[int],
    *,
    unconditional_prompts: Sequence[Sequence[int]] | None = None,
    min_frames: int | Sequence[int] = 1,
    sampling: SamplingSettings | None = None,
    speed: LMSpeed | None = None,
    progress: bool | None = None,
    observer: Any | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate audio spans after id prompts and return them as codec tokens.

    prompts:     one list of LM ids per row; each ends inside an open audio span
                 (``... <|audio_start|> [audio ids]``).
    max_frames:  frame limit per row, counting the frames already in the prompt (``sampling.seconds``
                 is not read here).
    unconditional_prompts: one list of LM ids per row, the prompts classifier-free guidance
                 compares with (``sampling.guidance_scale``; None there: 3.0 with these prompts).
    min_frames:  frames per row at least (>= 1), counting the frames already in the prompt.
    sampling:    ``SamplingSettings`` (None: its defaults); n = ``num_return_sequences`` rows per prompt.
    speed:       KV cache, ``torch.compile`` and packed linears of the steps (``LMSpeed``).
    progress:    a tqdm bar over frames; None shows it only when stderr is a terminal.
    observer:    a pass-through logits processor called every step after the constraint with the
                 ids written so far (streaming watches generation with it, ``lm_thread.StepTap``);
                 it sees each batch's loop in turn; not with beam search.
    returns:     (tokens LongTensor[B * n, T, 2], frame lengths LongTensor[B * n]); every row has
                 between ``min_frames`` and ``max_frames`` whole frames.
    """
    sampling = sampling_settings(sampling)
    rows = len(prompts)
    if not rows:
        raise ValueError("prompts must hold at least one prompt.")
    scale = sampling.guidance(unconditional_prompts is not None)
    if scale == 1.0:
        unconditional_prompts = None
    elif len(unconditional_prompts) != rows:
        raise ValueError(f"{len(unconditional_prompts)} unconditional prompts for {rows} prompts: give one per prompt.")
    if observer is not None and sampling.num_beams > 1:
        raise ValueError(f"an observer cannot watch beam search (num_beams={sampling.num_beams}); use num_beams=1.")
    limits = _per_row(max_frames, rows, "max_frames"), _per_row(min_frames, rows, "min_frames")
    copies = sampling.num_return_sequences if sampling.num_beams == 1 else 1  # beam search makes its n copies
    parts = [slice(start, start + sampling.batch_size) for start in range(0, rows, sampling.batch_size)]
    batches = [  # every prompt checked before any batch runs
        prompt_batch(model, layout, prompts[part], limits[0][part], first=part.start, copies=copies,
                     unconditional=unconditional_prompts[part] if unconditional_prompts is not None else None)
        for part in parts
    ]
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    speed = speed or LMSpeed()
    rows_out = []
    for part, (batch, max_new) in zip(parts, batches, strict=True):
        per_prompt = copies * sampling.num_beams  # the constraint's rows per prompt: its copies, or its beams
        constraint = AudioTokenConstraintLogitsProcessor(layout, limits[0][part].repeat_interleave(per_prompt),
                                                         min_frames=limits[1][part].repeat_interleave(per_prompt))
        common = dict(sampling=sampling, processors=[constraint] if observer is None else [constraint, observer],
                      speed=speed, progress=progress)
        with speed.packing(model):
            if sampling.num_beams > 1:
                sequences = beam_search(model, layout, batch, max_new, **common)
            else:
                sequences = generate_ids(model, layout, batch, max_new, guidance_scale=scale, **common)
        rows_out += [layout.last_span_tokens(row)[0] for row in sequences.cpu()]
    tokens, lengths = pad_stack(rows_out)
    if bool((lengths < limits[1].repeat_interleave(sampling.num_return_sequences)).any()):  # pragma: no cover
        raise RuntimeError(f"generation produced fewer than {limits[1].tolist()} frames: {lengths.tolist()}")
    return tokens, lengths


def _per_row(value: int | Sequence[int], rows: int, name: str) -> torch.Tensor:
    """An int or one int per row -> LongTensor[rows]."""
    t = torch.as_tensor(value, dtype=torch.long)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != rows):
        raise ValueError(f"{name} must be an int or one int per prompt ({rows}), got {value!r}.")
    return t.expand(rows).clone()


def text_to_tokens(
    model: Any, tokenizer: AudioTextTokenizer, captions: Sequence[str], *, sampling: SamplingSettings | None = None,
    speed: LMSpeed | None = None, progress: bool | None = None, observer: Any | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codec tokens of one clip of at most ``sampling.seconds`` per caption.

    captions: str per clip; ``""`` generates without a caption. Guidance (``sampling.guidance_scale``,
              None: 3.0) compares each with the caption-less prompt.
    speed, progress, observer: as in ``generate_tokens``.
    returns:  (tokens LongTensor[B * n, T, 2], frame lengths LongTensor[B * n]), n rows per caption.
    """
    sampling = sampling_settings(sampling)
    prompts, unconditional = text_prompts(tokenizer, captions)
    return generate_tokens(
        model, tokenizer.layout, prompts, tokenizer.layout.frames_for_seconds(sampling.seconds),
        unconditional_prompts=unconditional, sampling=sampling, speed=speed, progress=progress, observer=observer,
    )


def continue_tokens(
    model: Any, tokenizer: AudioTextTokenizer, clips: Sequence[torch.Tensor], *, sampling: SamplingSettings | None = None,
    speed: LMSpeed | None = None, progress: bool | None = None, observer: Any | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Codec tokens of each clip continued by 1 frame up to ``sampling.seconds`` of generated frames.

    clips:    one LongTensor[T_b, 2] of codec tokens per clip.
    speed, progress, observer: as in ``generate_tokens``.
    returns:  (tokens LongTensor[B * n, T, 2] of the whole clips, prompt frames first; frame lengths
              LongTensor[B * n]; the prompt's frames per returned row, n copies per clip). Prompt frames are
              kept as they are where the pattern's prompt holds them whole (``"interleave"``); with
              ``"semantic_first"`` only their semantic ids are kept.
    """
    sampling = sampling_settings(sampling)
    new_frames = tokenizer.layout.frames_for_seconds(sampling.seconds)
    prompts, frames = continuation_prompts(tokenizer, clips)
    tokens, lengths = generate_tokens(
        model, tokenizer.layout, prompts, [f + new_frames for f in frames], min_frames=[f + 1 for f in frames],
        sampling=sampling, speed=speed, progress=progress, observer=observer,
    )
    return tokens, lengths, [f for f in frames for _ in range(sampling.num_return_sequences)]
