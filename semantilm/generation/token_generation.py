"""Token-level generation: LM ids -> codec tokens (``generate_tokens``, ``text_to_tokens``,
``continue_tokens``); ``generate`` and ``stream`` turn these tokens into waveforms.

Everything ``generate_tokens`` returns decodes: the ``AudioTokenConstraintLogitsProcessor``
keeps every audio span in the layout's token pattern and ends it within the frame limits; a
span cut short anyway is truncated to whole frames. On the CPU the LM's large fp32 linear layers
run through oneDNN with packed weights while it generates (``packed_linears``;
``SEMANTILM_PACKED_LINEARS=0`` turns that off).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch

from semantilm.generation.guided import frame_progress, guided_generate, sampling_warpers
from semantilm.generation.lm_speed import LMSpeed, generation_config_speed
from semantilm.generation.packed_linears import packed_linears
from semantilm.generation.prepare import (
    ProgressProcessor,
    check_prompts,
    check_sampling,
    generated_tokens,
    generation_config,
    left_padded,
    max_new_tokens_for,
    per_row,
    positive_int,
)
from semantilm.generation.processors import (
    AudioTokenConstraintLogitsProcessor,
    ClassifierFreeGuidanceLogitsProcessor,
)
from semantilm.generation.prompts import continuation_prompts, text_prompts
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["GUIDANCE_MODES", "generate_tokens", "text_to_tokens", "continue_tokens"]


GUIDANCE_MODES = ("one_forward", "two_calls")


def generate_tokens(
    model: Any,
    layout: AudioTokenLayout,
    prompts: Sequence[Sequence[int]],
    max_frames: int | Sequence[int],
    unconditional_prompts: Sequence[Sequence[int]] | None = None,
    guidance_scale: float = 1.0,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_frames: int | Sequence[int] = 1,
    num_return_sequences: int = 1,
    num_beams: int = 1,
    progress: bool | None = None,
    guidance_mode: str = "one_forward",
    observer: Any | None = None,
    speed: LMSpeed | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate audio spans after id prompts and return them as codec tokens.

    prompts:     one list of LM ids per row; each ends inside an open audio span
                 (``... <|audio_start|> [audio ids]``).
    max_frames:  frame limit per row, counting the frames already in the prompt.
    unconditional_prompts: one list of LM ids per row, the prompts classifier-free guidance
                 (``guidance_scale != 1``) compares with.
    min_frames:  frames per row at least (>= 1), counting the frames already in the prompt.
    num_return_sequences: generations per prompt (rows ``b * n ... b * n + n - 1`` belong to
                 prompt b); with beam search, the best ``n <= num_beams`` beams; n > 1 needs
                 sampling (not ``top_k=1``) or beams, else the takes would be identical (``ValueError``).
    num_beams:   beam search (``model.generate``) when > 1; not with guidance.
    progress:    a tqdm bar over frames; None shows it only when stderr is a terminal.
    guidance_mode: ``"one_forward"`` runs the conditional and unconditional rows as one batch
                 with one KV cache (``guided.guided_generate``); ``"two_calls"``, the older way,
                 runs ``model.generate`` with ``ClassifierFreeGuidanceLogitsProcessor``, which
                 calls the model a second time per step. Both give the same ids up to float noise.
    observer:    a pass-through logits processor called every step after the constraint with the
                 ids written so far (streaming watches generation with it, ``lm_thread.StepTap``);
                 not with beam search, whose rows are not final until the end.
    speed:       KV cache and ``torch.compile`` of the steps (``LMSpeed``; None: dynamic, eager).
    returns:     (tokens LongTensor[B * n, T, 2], frame lengths LongTensor[B * n]); every row has
                 between ``min_frames`` and ``max_frames`` whole frames.
    """
    if not prompts:
        raise ValueError("prompts must hold at least one prompt.")
    n = positive_int(num_return_sequences, "num_return_sequences")
    beams = positive_int(num_beams, "num_beams")
    guided = guidance_scale != 1.0
    _check_modes(guided, beams, n, guidance_mode, unconditional_prompts, len(prompts), observer is not None)
    check_sampling(do_sample, temperature, top_k, top_p, n, beams)
    rows = len(prompts)
    max_frames_t, min_frames_t = per_row(max_frames, rows), per_row(min_frames, rows)
    max_new_tokens = max_new_tokens_for(
        model, prompts, max_frames_t, check_prompts(layout, prompts), unconditional_prompts if guided else None
    )
    copies = n if beams == 1 else 1  # beam search makes its n copies itself
    prompts = [p for p in prompts for _ in range(copies)]
    device = next(model.parameters()).device
    input_ids, attention_mask = left_padded(prompts, layout.pad_id, device)
    constraint = AudioTokenConstraintLogitsProcessor(
        layout, max_frames_t.repeat_interleave(copies * beams), min_frames=min_frames_t.repeat_interleave(copies * beams)
    )
    unconditional = None
    if guided:
        u_ids, u_mask = left_padded([p for p in unconditional_prompts for _ in range(copies)], layout.pad_id, device)
        unconditional = (u_ids, u_mask, guidance_scale)
    processors = [constraint] if observer is None else [constraint, observer]
    if guided and guidance_mode == "one_forward":
        sequences = guided_generate(
            model, input_ids, attention_mask, u_ids, u_mask, guidance_scale, max_new_tokens,
            eos_token_id=layout.audio_end_id, pad_token_id=layout.pad_id, processors=processors, speed=speed,
            warpers=sampling_warpers(do_sample, temperature, top_k, top_p), do_sample=do_sample, progress=progress,
        )
    else:
        config = generation_config(layout, max_new_tokens, do_sample, temperature, top_k, top_p, beams, n if beams > 1 else 1)
        sequences = _run_generate(model, input_ids, attention_mask, processors, config, progress, speed, unconditional)
    tokens, lengths = generated_tokens(layout, sequences)
    if bool((lengths < min_frames_t.repeat_interleave(n)).any()):  # pragma: no cover - guaranteed by the processor
        raise RuntimeError(f"generation produced fewer than {min_frames_t.tolist()} frames: {lengths.tolist()}")
    return tokens, lengths


def _check_modes(
    guided: bool, beams: int, n: int, guidance_mode: str, unconditional_prompts: Sequence[Sequence[int]] | None,
    rows: int, observed: bool = False,
) -> None:
    """``ValueError``s for combinations of guidance, beams, return sequences and an observer that cannot run."""
    if guidance_mode not in GUIDANCE_MODES:
        raise ValueError(f"guidance_mode must be one of {GUIDANCE_MODES}, got {guidance_mode!r}.")
    if observed and beams > 1:
        raise ValueError(f"an observer cannot watch beam search (num_beams={beams}); use num_beams=1.")
    if beams > 1 and n > beams:
        raise ValueError(f"num_return_sequences={n} must be <= num_beams={beams} with beam search.")
    if not guided:
        return
    if beams > 1:
        raise ValueError(
            f"beam search (num_beams={beams}) cannot be combined with classifier-free guidance "
            "(guidance_scale != 1); use num_beams=1 or guidance_scale=1."
        )
    if unconditional_prompts is None or len(unconditional_prompts) != rows:
        raise ValueError("guidance_scale != 1 needs one unconditional prompt per prompt.")


def _run_generate(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, processors: list[Any], config: Any,
    progress: bool | None, speed: LMSpeed | None, unconditional: tuple[torch.Tensor, torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """``model.generate`` with ``processors`` (after the two-call guidance processor when ``unconditional``
    = (ids, mask, scale)), ``speed`` and a frame progress bar -> sequences LongTensor[B', L']."""
    from transformers import LogitsProcessorList

    if unconditional is not None:
        u_ids, u_mask, scale = unconditional
        processors = [ClassifierFreeGuidanceLogitsProcessor(model, u_ids, u_mask, scale, input_ids.shape[1]),
                      *processors]
    speed = speed or LMSpeed()
    generation_config_speed(config, speed, input_ids.device)
    packed = nullcontext() if speed.compile else packed_linears(model)  # compiled steps pack their own
    with torch.inference_mode(), packed, frame_progress(config.max_new_tokens, progress) as bar:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=LogitsProcessorList([*processors, ProgressProcessor(bar, input_ids.shape[1])]),
        )
    return out if isinstance(out, torch.Tensor) else out.sequences


def text_to_tokens(
    model: Any,
    tokenizer: AudioTextTokenizer,
    captions: Sequence[str],
    max_frames: int,
    guidance_scale: float = 3.0,
    **sampling: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codec tokens of one clip of at most ``max_frames`` frames per caption.

    captions:       str per clip; ``""`` generates without a caption.
    guidance_scale: classifier-free guidance against the caption-less prompt (1 = off).
    sampling:       ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``num_return_sequences`` (n),
                    ``num_beams``, ``progress``, ``guidance_mode``, ``observer`` of ``generate_tokens``.
    returns:        (tokens LongTensor[B * n, T, 2], frame lengths LongTensor[B * n]), n rows per caption.
    """
    prompts, unconditional = text_prompts(tokenizer, captions)
    return generate_tokens(
        model, tokenizer.layout, prompts, max_frames, unconditional_prompts=unconditional,
        guidance_scale=guidance_scale, **sampling,
    )


def continue_tokens(
    model: Any, tokenizer: AudioTextTokenizer, clips: Sequence[torch.Tensor], new_frames: int, **sampling: Any
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Codec tokens of each clip continued by 1 to ``new_frames`` generated frames.

    clips:    one LongTensor[T_b, 2] of codec tokens per clip.
    sampling: ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``num_return_sequences`` (n),
              ``num_beams``, ``progress``, ``observer`` of ``generate_tokens``.
    returns:  (tokens LongTensor[B * n, T, 2] of the whole clips, prompt frames first; frame lengths
              LongTensor[B * n]; the prompt's frames per returned row, n copies per clip). Prompt frames are kept as they
              are where the pattern's prompt holds them whole (``"interleave"``); with
              ``"semantic_first"`` only their semantic ids are kept.
    """
    prompts, frames = continuation_prompts(tokenizer, clips)
    tokens, lengths = generate_tokens(
        model, tokenizer.layout, prompts, [f + new_frames for f in frames],
        min_frames=[f + 1 for f in frames], **sampling,
    )
    copies = tokens.shape[0] // len(frames)  # num_return_sequences
    return tokens, lengths, [f for f in frames for _ in range(copies)]
