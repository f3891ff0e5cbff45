"""Generation entry points: LM ids -> codec tokens (``generate_tokens``, ``text_to_tokens``,
``continue_tokens``) and captions or clips -> waveforms (``generate_audio``, ``continue_audio``).

Everything ``generate_tokens`` returns decodes: the ``AudioTokenConstraintLogitsProcessor``
keeps every audio span in the layout's token pattern and ends it within the frame limits; a
span cut short anyway is truncated to whole frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from codec.io import pad_sequences, pad_stack
from codec.sampling import DecodeSettings
from semantilm.generation.outputs import AudioGenerationOutput
from semantilm.generation.processors import (
    AudioTokenConstraintLogitsProcessor,
    ClassifierFreeGuidanceLogitsProcessor,
)
from semantilm.generation.prompts import continuation_prompts, text_prompts
from semantilm.tokens.layout import AUDIO_START, AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from codec.outputs import DecodeOutput
    from semantilm.codec_api import AudioCodec

__all__ = ["generate_tokens", "text_to_tokens", "continue_tokens", "generate_audio", "continue_audio"]


# ----- LM ids -> codec tokens ------------------------------------------------------------
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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model.generate`` on id prompts and return the generated audio spans as codec tokens.

    prompts:     one list of LM ids per row; each ends inside an open audio span
                 (``... <|audio_start|> [audio ids]``).
    max_frames:  frame limit per row, counting the frames already in the prompt.
    unconditional_prompts: one list of LM ids per row, the prompts classifier-free guidance
                 (``guidance_scale != 1``) compares with.
    min_frames:  frames per row at least (>= 1), counting the frames already in the prompt.
    returns:     (tokens LongTensor[B, T, 2], frame lengths LongTensor[B]); every row has
                 between ``min_frames`` and ``max_frames`` whole frames.
    """
    from transformers import LogitsProcessorList

    if not prompts:
        raise ValueError("prompts must hold at least one prompt.")
    rows = len(prompts)
    max_frames_t = _per_row(max_frames, rows)
    audio_in_prompts = _check_prompts(layout, prompts)
    max_new_tokens = _max_new_tokens(model, prompts, max_frames_t, audio_in_prompts)
    device = next(model.parameters()).device
    input_ids, attention_mask = _left_padded(prompts, layout.pad_id, device)

    processors = []
    if guidance_scale != 1.0:
        if unconditional_prompts is None or len(unconditional_prompts) != rows:
            raise ValueError("guidance_scale != 1 needs one unconditional prompt per prompt.")
        u_ids, u_mask = _left_padded(unconditional_prompts, layout.pad_id, device)
        processors.append(
            ClassifierFreeGuidanceLogitsProcessor(model, u_ids, u_mask, guidance_scale, input_ids.shape[1])
        )
    min_frames_t = _per_row(min_frames, rows)
    processors.append(AudioTokenConstraintLogitsProcessor(layout, max_frames_t, min_frames=min_frames_t))

    config = _generation_config(layout, max_new_tokens, do_sample, temperature, top_k, top_p)
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=LogitsProcessorList(processors),
        )
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    tokens, lengths = _generated_tokens(layout, sequences)
    if bool((lengths < min_frames_t).any()):  # pragma: no cover - guaranteed by the processor
        raise RuntimeError(f"generation produced fewer than {min_frames_t.tolist()} frames: {lengths.tolist()}")
    return tokens, lengths


def _per_row(value: int | Sequence[int], rows: int) -> torch.Tensor:
    """An int or one int per row -> LongTensor[rows]."""
    return torch.as_tensor(value, dtype=torch.long).expand(rows).clone()


def _check_prompts(layout: AudioTokenLayout, prompts: Sequence[Sequence[int]]) -> list[int]:
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


def _max_new_tokens(
    model: Any, prompts: Sequence[Sequence[int]], max_frames: torch.Tensor, audio_in_prompts: list[int]
) -> int:
    """New ids that let every row reach ``max_frames`` and write ``<|audio_end|>``; a
    ``ValueError`` when the longest prompt plus them exceeds the model's context."""
    needed = [2 * int(m) - s + 1 for m, s in zip(max_frames.tolist(), audio_in_prompts, strict=True)]
    max_new_tokens = max(needed)
    width = max(len(p) for p in prompts)
    context = getattr(model.config, "max_position_embeddings", None)
    if context is not None and width + max_new_tokens > context:
        longest = max(range(len(prompts)), key=lambda i: len(prompts[i]))
        raise ValueError(
            f"prompts[{longest}] has {len(prompts[longest])} ids and needs up to {max_new_tokens} new ids "
            f"({int(max_frames.max())} frames), more than the model's context of {context}; "
            "shorten the prompt or ask for fewer seconds."
        )
    return max_new_tokens


def _left_padded(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids LongTensor[B, L] left-padded with ``pad_id``, attention mask LongTensor[B, L])."""
    ids = pad_sequences(prompts, pad_id, side="left").to(device)
    mask = pad_sequences([[1] * len(p) for p in prompts], 0, side="left").to(device)
    return ids, mask


def _generation_config(
    layout: AudioTokenLayout, max_new_tokens: int, do_sample: bool, temperature: float,
    top_k: int | None, top_p: float | None,
):
    """The ``transformers.GenerationConfig`` of one call (sampling arguments checked)."""
    from transformers import GenerationConfig

    sampling: dict[str, Any] = {}
    if do_sample:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}.")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        sampling = dict(temperature=temperature, top_k=top_k or 0, top_p=top_p if top_p is not None else 1.0)
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        eos_token_id=layout.audio_end_id,
        pad_token_id=layout.pad_id,
        bos_token_id=layout.audio_start_id,
        **sampling,
    )


def _generated_tokens(layout: AudioTokenLayout, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The last audio span of each row of ``sequences`` LongTensor[B, L] -> (codec tokens
    LongTensor[B, T, 2], zero after each row's frames, frame lengths LongTensor[B])."""
    tokens = []
    for row in sequences.cpu():
        start = int((row == layout.audio_start_id).nonzero()[-1])
        span = row[start + 1 :]
        stop = (~layout.is_audio(span)).nonzero()
        if stop.numel():
            span = span[: int(stop[0])]
        tokens.append(layout.span_to_tokens(span))
    return pad_stack(tokens)


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
    sampling:       ``do_sample``, ``temperature``, ``top_k``, ``top_p`` of ``generate_tokens``.
    returns:        (tokens LongTensor[B, T, 2], frame lengths LongTensor[B]).
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
    sampling: ``do_sample``, ``temperature``, ``top_k``, ``top_p`` of ``generate_tokens``.
    returns:  (tokens LongTensor[B, T, 2] of the whole clips, prompt frames first; frame lengths
              LongTensor[B]; the prompt's frames T_b per clip). Prompt frames are kept as they
              are where the pattern's prompt holds them whole (``"interleave"``); with
              ``"semantic_first"`` only their semantic ids are kept.
    """
    prompts, frames = continuation_prompts(tokenizer, clips)
    tokens, lengths = generate_tokens(
        model, tokenizer.layout, prompts, [f + new_frames for f in frames],
        min_frames=[f + 1 for f in frames], **sampling,
    )
    return tokens, lengths, frames


# ----- captions or clips -> waveforms ----------------------------------------------------
def _decode(
    codec: AudioCodec, tokens: torch.Tensor, lengths: torch.Tensor, decode: DecodeSettings | None,
    generator: torch.Generator | None,
) -> DecodeOutput:
    settings = DecodeSettings() if decode is None else decode
    if not isinstance(settings, DecodeSettings):
        raise TypeError(f"decode must be a codec.DecodeSettings or None, got {type(decode).__name__}.")
    return codec.decode(
        tokens, lengths, steps=settings.steps, sampler=settings.sampler, cfg_scale=settings.cfg_scale,
        eta=settings.eta, generator=generator,
    )


def _batches(n: int, size: int) -> list[range]:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {size!r}.")
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _check_captions(prompts: Any) -> None:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of captions (str), got {prompts!r}.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(p).__name__}.")


def generate_audio(
    model: Any,
    tokenizer: AudioTextTokenizer,
    codec: AudioCodec,
    prompts: Sequence[str],
    seconds: float = 10.0,
    guidance_scale: float = 3.0,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = 250,
    top_p: float | None = None,
    batch_size: int = 8,
    seed: int | None = None,
    decode: DecodeSettings | None = None,
    generator: torch.Generator | None = None,
) -> AudioGenerationOutput:
    """Text-to-audio: one clip of at most ``seconds`` per caption, decoded by ``codec``.

    prompts:        captions (str); ``""`` generates without a caption.
    guidance_scale: classifier-free guidance against the caption-less prompt (1 = off).
    seed:           seeds torch's global generator before the LM samples.
    decode:         how the codec's decoder samples (``codec.DecodeSettings``; None: its defaults).
    generator:      seeds the decoder's noise.
    returns:        ``AudioGenerationOutput`` with audio FloatTensor[B, N] at the codec's rate.
    """
    from tqdm.auto import tqdm

    _check_captions(prompts)
    layout = tokenizer.layout
    layout.check_codec(codec)
    max_frames = layout.frames_for_seconds(seconds)
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    sampling = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p)
    parts = []
    chunks = _batches(len(prompts), batch_size)
    for chunk in tqdm(chunks, desc="generate_audio", disable=len(chunks) == 1):
        captions = [prompts[i] for i in chunk]
        tokens, lengths = text_to_tokens(model, tokenizer, captions, max_frames, guidance_scale, **sampling)
        dec = _decode(codec, tokens, lengths, decode, generator)
        parts.append(AudioGenerationOutput(dec.audio, dec.lengths, dec.sample_rate, tokens, lengths))
    return AudioGenerationOutput.concat(parts)


def continue_audio(
    model: Any,
    tokenizer: AudioTextTokenizer,
    codec: AudioCodec,
    audio: list[torch.Tensor] | torch.Tensor,
    seconds: float,
    sample_rate: int,
    lengths: torch.Tensor | None = None,
    return_prompt: bool = False,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = 250,
    top_p: float | None = None,
    batch_size: int = 8,
    seed: int | None = None,
    decode: DecodeSettings | None = None,
    generator: torch.Generator | None = None,
) -> AudioGenerationOutput:
    """Continue each clip by ``seconds`` of generated audio.

    audio:         list of FloatTensor[N_b] or FloatTensor[B, N] (+ ``lengths``) at ``sample_rate``.
    return_prompt: when false, the returned audio holds only the continuation; the decoder
                   still sees prompt + continuation so that the two join smoothly. ``tokens``
                   always hold the whole clip (prompt frames first).
    decode, generator: as in ``generate_audio``.
    With the ``semantic_first`` pattern the prompt gives only semantic ids; the acoustic ids of
    the whole clip, prompt included, are generated.
    """
    layout = tokenizer.layout
    layout.check_codec(codec)
    new_frames = layout.frames_for_seconds(seconds)
    clips = codec.encode(audio, sample_rate, lengths).unbatch()
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    sampling = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p)
    parts = []
    for chunk in _batches(len(clips), batch_size):
        tokens, tok_lengths, frames = continue_tokens(model, tokenizer, [clips[i] for i in chunk], new_frames, **sampling)
        dec = _decode(codec, tokens, tok_lengths, decode, generator)
        wav, wav_len = dec.audio, dec.lengths
        if not return_prompt:
            wav, wav_len = _after_prompt(wav, wav_len, frames, dec.sample_rate, layout.frame_rate)
        parts.append(AudioGenerationOutput(wav, wav_len, dec.sample_rate, tokens, tok_lengths))
    return AudioGenerationOutput.concat(parts)


def _after_prompt(
    audio: torch.Tensor, lengths: torch.Tensor, frames: list[int], sample_rate: int, frame_rate: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of each row of ``audio`` FloatTensor[B, N] after its ``frames[b]`` prompt
    frames -> (FloatTensor[B, N'] zero-padded, LongTensor[B] valid samples)."""
    rows = []
    for row, n, f in zip(audio, lengths.tolist(), frames, strict=True):
        cut = min(int(round(f * sample_rate / frame_rate)), int(n))
        rows.append(row[cut : int(n)])
    return pad_stack(rows)
