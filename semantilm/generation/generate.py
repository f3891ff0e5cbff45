"""Generation: constrained decoding of audio spans, classifier-free guidance, and the
``generate_audio`` / ``continue_audio`` entry points that return waveforms.

Everything ``generate_tokens`` returns decodes: inside an audio span the
``AudioTokenConstraintLogitsProcessor`` only allows the id kind the layout's pattern expects
next, ``<|audio_end|>`` only at a frame boundary, and forces it at the frame limit; a span
cut short anyway is truncated to whole frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import LogitsProcessor

from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer, pad_sequences

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.codec_api import AudioCodec

__all__ = [
    "AudioTokenConstraintLogitsProcessor",
    "ClassifierFreeGuidanceLogitsProcessor",
    "AudioGenerationOutput",
    "generate_tokens",
    "generate_audio",
    "continue_audio",
]

logger = logging.getLogger(__name__)


class AudioTokenConstraintLogitsProcessor(LogitsProcessor):
    """Masks every id that would break the audio span's pattern.

    For each row, the span starts after the last ``<|audio_start|>`` in ``input_ids``. Inside
    it, only the id kind the pattern expects next is allowed (interleave: semantic at even,
    acoustic at odd positions), and ``<|audio_end|>`` only at a frame boundary once
    ``min_frames`` frames exist; at ``max_frames`` frames the end token is the only choice.
    Rows without an open span may only open one; rows whose span ended may only pad.

    layout:     the LM's token layout.
    max_frames: int or LongTensor[B] frame limit per row (counting frames already in the prompt).
    min_frames: int or LongTensor[B], frames a span holds at least before it may end
                (>= 1: empty audio cannot decode).
    """

    def __init__(
        self, layout: AudioTokenLayout, max_frames: int | torch.Tensor, min_frames: int | torch.Tensor = 1
    ):
        if not isinstance(layout, AudioTokenLayout):
            raise TypeError(f"layout must be an AudioTokenLayout, got {type(layout).__name__}.")
        limits = {}
        for name, value in (("max_frames", max_frames), ("min_frames", min_frames)):
            if isinstance(value, (bool, float)):
                raise TypeError(f"{name} must be an int or a LongTensor[B], got {value!r}.")
            t = torch.as_tensor(value)
            if t.dtype.is_floating_point or t.dtype == torch.bool or t.ndim > 1 or t.numel() == 0:
                raise TypeError(f"{name} must be an int or a LongTensor[B], got {value!r}.")
            limits[name] = t.long()
        if int(limits["min_frames"].min()) < 1:
            raise ValueError(f"min_frames={limits['min_frames'].tolist()} must be >= 1 (empty audio cannot decode).")
        if bool((limits["max_frames"] < limits["min_frames"]).any()):
            raise ValueError(
                f"max_frames={limits['max_frames'].tolist()} must be >= min_frames={limits['min_frames'].tolist()}."
            )
        self.layout = layout
        self.max_frames = limits["max_frames"]
        self.min_frames = limits["min_frames"]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """input_ids LongTensor[B, L], scores FloatTensor[B, V] -> new FloatTensor[B, V]."""
        lay = self.layout
        if scores.shape[-1] < lay.vocab_size:
            raise ValueError(f"scores have {scores.shape[-1]} columns but the layout needs {lay.vocab_size}.")
        device = scores.device
        ids = input_ids.to(device)
        batch, length = ids.shape
        pos = torch.arange(length, device=device)
        last_start = torch.where(ids == lay.audio_start_id, pos, -1).amax(-1) if length else ids.new_full((batch,), -1)
        in_span = pos.unsqueeze(0) > last_start.unsqueeze(1)
        ended = ((ids == lay.audio_end_id) & in_span).any(-1)
        n_sem = (lay.is_semantic(ids) & in_span).sum(-1)
        n_aco = (lay.is_acoustic(ids) & in_span).sum(-1)
        max_frames, min_frames = (self._per_row(t, batch, device) for t in (self.max_frames, self.min_frames))
        sem_ok, aco_ok, end_ok = lay.allowed_next(n_sem, n_aco, max_frames, min_frames)

        # Each row picks one of seven column masks (built once per vocab width and device):
        # 0 semantic, 1 acoustic, 2 semantic or end, 3 end, 4 start, 5 pad, 6 acoustic or end.
        cols = self._columns(scores.shape[-1], device)  # BoolTensor[6, V]
        kind = torch.full((batch,), 5, dtype=torch.long, device=device)  # default: pad only
        kind = torch.where(~ended, torch.where(last_start < 0, 4, -1), kind)
        span_kind = torch.where(
            sem_ok, torch.where(end_ok, 2, 0), torch.where(aco_ok, torch.where(end_ok, 6, 1), 3)
        )
        kind = torch.where(kind < 0, span_kind, kind)
        allowed = cols[kind]
        return scores.masked_fill(~allowed, -math.inf)

    def _columns(self, width: int, device: torch.device) -> torch.Tensor:
        key = (width, str(device))
        if getattr(self, "_cols_key", None) != key:
            lay = self.layout
            vocab = torch.arange(width, device=device)
            sem = (vocab >= lay.semantic_offset) & (vocab < lay.acoustic_offset)
            aco = (vocab >= lay.acoustic_offset) & (vocab < lay.vocab_size)
            end = vocab == lay.audio_end_id
            self._cols = torch.stack(
                [sem, aco, sem | end, end, vocab == lay.audio_start_id, vocab == lay.pad_id, aco | end]
            )
            self._cols_key = key
        return self._cols

    @staticmethod
    def _per_row(t: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
        t = t.to(device)
        if t.ndim == 0:
            return t.expand(batch)
        if t.shape[0] != batch:
            raise ValueError(f"a per-row frame limit has {t.shape[0]} rows but the batch has {batch}.")
        return t


class ClassifierFreeGuidanceLogitsProcessor(LogitsProcessor):
    """Classifier-free guidance for decoder-only LMs with a separate unconditional prompt.

    Keeps its own KV cache of the unconditional branch (the caption-less prompt followed by
    the tokens generated so far) and returns, on log-probabilities,
    ``uncond + guidance_scale * (cond - uncond)``. transformers' own
    ``UnbatchedClassifierFreeGuidanceLogitsProcessor`` passes its KV cache as ``cache=``, which
    only recent transformers versions read (older ones take ``past_key_values=`` and would run
    the unconditional branch without context), and builds no position ids for left-padded
    unconditional prompts; this one handles both.

    model:                the LM (same one that ``generate`` runs).
    unconditional_ids:    LongTensor[B, L_u], left-padded caption-less prompts.
    unconditional_mask:   LongTensor[B, L_u], 1 for real tokens.
    prompt_length:        L, the width of the (conditional) prompt batch given to ``generate``.
    """

    def __init__(
        self,
        model: Any,
        unconditional_ids: torch.Tensor,
        unconditional_mask: torch.Tensor,
        guidance_scale: float,
        prompt_length: int,
    ):
        if not (isinstance(guidance_scale, (int, float)) and math.isfinite(guidance_scale) and guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}.")
        if unconditional_ids.shape != unconditional_mask.shape or unconditional_ids.ndim != 2:
            raise ValueError(
                f"unconditional_ids {tuple(unconditional_ids.shape)} and unconditional_mask "
                f"{tuple(unconditional_mask.shape)} must both be [B, L]."
            )
        self.model = model
        self.guidance_scale = float(guidance_scale)
        self.prompt_length = int(prompt_length)
        self._pending = unconditional_ids
        self._mask = unconditional_mask
        self._fed = 0
        self._cache = None
        import inspect

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(type(base).forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def _unconditional_logprobs(self, input_ids: torch.Tensor) -> torch.Tensor:
        new = input_ids[:, self.prompt_length + self._fed :]
        self._fed += new.shape[1]
        device = input_ids.device
        step = torch.cat([self._pending.to(device), new], dim=1) if self._pending is not None else new
        self._mask = torch.cat([self._mask.to(device), torch.ones_like(new)], dim=1)
        self._pending = None
        positions = (self._mask.cumsum(-1) - 1).clamp(min=0)[:, -step.shape[1] :]
        out = self.model(
            input_ids=step,
            attention_mask=self._mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: self._cache},
        )
        self._cache = out.get(self._cache_arg)
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        cond = torch.log_softmax(scores.float(), dim=-1)
        if self.guidance_scale == 1.0:
            return cond.to(scores.dtype)
        uncond = self._unconditional_logprobs(input_ids).to(scores.device)
        return (uncond + self.guidance_scale * (cond - uncond)).to(scores.dtype)


@dataclass
class AudioGenerationOutput:
    """Generated audio and the tokens it was decoded from.

    audio:         FloatTensor[B, N] at ``sample_rate``, zero-padded after each clip's length.
    lengths:       LongTensor[B], valid samples per clip.
    sample_rate:   Hz.
    tokens:        LongTensor[B, T, 2] codec tokens (semantic, acoustic), 0 after each length.
    token_lengths: LongTensor[B], frames per clip.
    """

    audio: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int
    tokens: torch.Tensor
    token_lengths: torch.Tensor

    def unbatch(self) -> list[torch.Tensor]:
        """One FloatTensor[N_b] per clip."""
        return [a[: int(n)] for a, n in zip(self.audio, self.lengths, strict=True)]


def _context_size(model: Any) -> int | None:
    return getattr(model.config, "max_position_embeddings", None)


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
    returns:     (tokens LongTensor[B, T, 2], frame lengths LongTensor[B]); every row has
                 between ``min_frames`` and ``max_frames`` whole frames.
    """
    from transformers import GenerationConfig, LogitsProcessorList

    if not prompts:
        raise ValueError("prompts must hold at least one prompt.")
    rows = len(prompts)
    max_frames_t = torch.as_tensor(max_frames, dtype=torch.long).expand(rows).clone()
    spans = []
    for i, p in enumerate(prompts):
        p_t = torch.as_tensor(list(p), dtype=torch.long)
        layout.validate_ids(p_t, f"prompts[{i}]")
        starts = (p_t == layout.audio_start_id).nonzero()
        if starts.numel() == 0:
            raise ValueError(f"prompts[{i}] has no {layout.special_tokens[0]!r} id ({layout.audio_start_id}).")
        span = p_t[int(starts[-1]) + 1 :]
        if span.numel():
            kept = layout.span_to_tokens(span)  # validates the pattern of the prompt audio
            if 2 * kept.shape[0] != span.numel() and layout.pattern == "interleave":
                raise ValueError(f"prompts[{i}] ends inside a frame; give whole frames of audio.")
        spans.append(span.numel())
    # Enough room to reach max_frames and write <|audio_end|>.
    needed = [2 * int(m) - s + 1 for m, s in zip(max_frames_t.tolist(), spans, strict=True)]
    max_new_tokens = max(needed)
    width = max(len(p) for p in prompts)
    context = _context_size(model)
    if context is not None and width + max_new_tokens > context:
        longest = max(range(rows), key=lambda i: len(prompts[i]))
        raise ValueError(
            f"prompts[{longest}] has {len(prompts[longest])} ids and needs up to {max_new_tokens} new ids "
            f"({int(max_frames_t.max())} frames), more than the model's context of {context}; "
            "shorten the prompt or ask for fewer seconds."
        )
    device = next(model.parameters()).device
    input_ids = pad_sequences(prompts, layout.pad_id, side="left").to(device)
    attention_mask = pad_sequences([[1] * len(p) for p in prompts], 0, side="left").to(device)

    processors = []
    if guidance_scale != 1.0:
        if unconditional_prompts is None or len(unconditional_prompts) != rows:
            raise ValueError("guidance_scale != 1 needs one unconditional prompt per prompt.")
        u_ids = pad_sequences(unconditional_prompts, layout.pad_id, side="left").to(device)
        u_mask = pad_sequences([[1] * len(p) for p in unconditional_prompts], 0, side="left").to(device)
        processors.append(ClassifierFreeGuidanceLogitsProcessor(model, u_ids, u_mask, guidance_scale, width))
    min_frames_t = torch.as_tensor(min_frames, dtype=torch.long).expand(rows).clone()
    processors.append(AudioTokenConstraintLogitsProcessor(layout, max_frames_t, min_frames=min_frames_t))

    sampling: dict[str, Any] = {}
    if do_sample:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}.")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        sampling = dict(temperature=temperature, top_k=top_k or 0, top_p=top_p if top_p is not None else 1.0)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        eos_token_id=layout.audio_end_id,
        pad_token_id=layout.pad_id,
        bos_token_id=layout.audio_start_id,
        **sampling,
    )
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=LogitsProcessorList(processors),
        )
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    tokens = []
    for b in range(rows):
        row = sequences[b].cpu()
        start = int((row == layout.audio_start_id).nonzero()[-1])
        span = row[start + 1 :]
        stop = (~layout.is_audio(span)).nonzero()
        if stop.numel():
            span = span[: int(stop[0])]
        tokens.append(layout.span_to_tokens(span))
    lengths = torch.tensor([t.shape[0] for t in tokens], dtype=torch.long)
    if bool((lengths < min_frames_t).any()):  # pragma: no cover - guaranteed by the processor
        raise RuntimeError(f"generation produced fewer than {min_frames_t.tolist()} frames: {lengths.tolist()}")
    batch = torch.zeros(rows, int(lengths.max()), 2, dtype=torch.long)
    for b, t in enumerate(tokens):
        batch[b, : t.shape[0]] = t
    return batch, lengths


def _decode(codec: AudioCodec, tokens: torch.Tensor, lengths: torch.Tensor, decode_kwargs: dict[str, Any] | None):
    return codec.decode(tokens, lengths, **(decode_kwargs or {}))


def _batches(n: int, size: int) -> list[range]:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {size!r}.")
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _concat_outputs(parts: list[AudioGenerationOutput]) -> AudioGenerationOutput:
    def cat_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
        width = max(t.shape[1] for t in tensors)
        return torch.cat([torch.nn.functional.pad(t, (0, 0) * (t.ndim - 2) + (0, width - t.shape[1])) for t in tensors])

    return AudioGenerationOutput(
        audio=cat_padded([p.audio for p in parts]),
        lengths=torch.cat([p.lengths for p in parts]),
        sample_rate=parts[0].sample_rate,
        tokens=cat_padded([p.tokens for p in parts]),
        token_lengths=torch.cat([p.token_lengths for p in parts]),
    )


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
    decode_kwargs: dict[str, Any] | None = None,
) -> AudioGenerationOutput:
    """Text-to-audio: one clip of at most ``seconds`` per caption, decoded by ``codec``.

    prompts:        captions (str); ``""`` generates without a caption.
    guidance_scale: classifier-free guidance against the caption-less prompt (1 = off).
    returns:        ``AudioGenerationOutput`` with audio FloatTensor[B, N] at the codec's rate.
    """
    from tqdm.auto import tqdm

    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of captions (str), got {prompts!r}.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(p).__name__}.")
    layout = tokenizer.layout
    layout.check_codec(codec)
    max_frames = layout.frames_for_seconds(seconds)
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    parts = []
    chunks = _batches(len(prompts), batch_size)
    for chunk in tqdm(chunks, desc="generate_audio", disable=len(chunks) == 1):
        ids = [tokenizer.text_prompt(prompts[i] or None) for i in chunk]
        uncond = [tokenizer.text_prompt(None) for _ in chunk]
        tokens, lengths = generate_tokens(
            model, layout, ids, max_frames, unconditional_prompts=uncond, guidance_scale=guidance_scale,
            do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
        )
        dec = _decode(codec, tokens, lengths, decode_kwargs)
        parts.append(AudioGenerationOutput(dec.audio, dec.lengths, dec.sample_rate, tokens, lengths))
    return _concat_outputs(parts)


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
    decode_kwargs: dict[str, Any] | None = None,
) -> AudioGenerationOutput:
    """Continue each clip by ``seconds`` of generated audio.

    audio:         list of FloatTensor[N_b] or FloatTensor[B, N] (+ ``lengths``) at ``sample_rate``.
    return_prompt: when false, the returned audio holds only the continuation; the decoder
                   still sees prompt + continuation so that the two join smoothly. ``tokens``
                   always hold the whole clip (prompt frames first).
    With the ``semantic_first`` pattern the prompt gives only semantic ids; the acoustic ids of
    the whole clip, prompt included, are generated.
    """
    layout = tokenizer.layout
    layout.check_codec(codec)
    new_frames = layout.frames_for_seconds(seconds)
    enc = codec.encode(audio, sample_rate, lengths)
    clips = enc.unbatch()
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    parts = []
    for chunk in _batches(len(clips), batch_size):
        ids, frames = [], []
        for i in chunk:
            t = clips[i]
            if layout.pattern == "interleave":
                ids.append(tokenizer.audio_prompt(t))
            else:
                ids.append(tokenizer.text_prompt(None) + (t[:, 0] + layout.semantic_offset).tolist())
            frames.append(t.shape[0])
        tokens, tok_lengths = generate_tokens(
            model, layout, ids, [f + new_frames for f in frames], do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, min_frames=[f + 1 for f in frames],
        )
        dec = _decode(codec, tokens, tok_lengths, decode_kwargs)
        wav, wav_len = dec.audio, dec.lengths
        if not return_prompt:
            cut = [min(int(round(f * dec.sample_rate / layout.frame_rate)), int(n)) for f, n in zip(frames, wav_len.tolist(), strict=True)]
            rows = [wav[b, cut[b] : int(wav_len[b])] for b in range(len(cut))]
            wav_len = torch.tensor([r.numel() for r in rows], dtype=torch.long)
            wav = torch.zeros(len(rows), int(wav_len.max()) if rows else 0, dtype=dec.audio.dtype)
            for b, r in enumerate(rows):
                wav[b, : r.numel()] = r
        parts.append(AudioGenerationOutput(wav, wav_len, dec.sample_rate, tokens, tok_lengths))
    return _concat_outputs(parts)
