"""Generation prompts as LM ids: built (text-to-audio, continuation), checked, sized and padded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from plumbing.io import pad_sequences
from semantilm.tokens.layout import AUDIO_START, AudioTokenLayout

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = [
    "PaddedPrompts", "prompt_batch", "text_prompts", "continuation_prompts", "check_prompts",
]


def text_prompts(tokenizer: AudioTextTokenizer, captions: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Prompts for text-to-audio, and their caption-less twins for classifier-free guidance.

    captions: one str per clip; ``""`` asks for audio without a caption.
    returns:  (prompts ``[bos] caption <|audio_start|>``, unconditional prompts
              ``[bos] <|audio_start|>``), one list of LM ids per caption in each.
    """
    tokenizer.warn_unknown_characters(captions, what="prompts")  # characters that would become <unk>
    prompts = [tokenizer.text_prompt(c or None) for c in captions]
    unconditional = [tokenizer.text_prompt(None) for _ in captions]
    return prompts, unconditional


def continuation_prompts(
    tokenizer: AudioTextTokenizer, clips: Sequence[torch.Tensor]
) -> tuple[list[list[int]], list[int]]:
    """Prompts that continue codec clips, in the tokenizer's layout pattern.

    clips:   one LongTensor[T_b, 2] of codec tokens per clip.
    returns: (prompts ``[bos] <|audio_start|> audio`` as lists of LM ids, frames T_b per clip).
             Which audio ids a prompt holds is the token pattern's choice (the whole clip for
             ``"interleave"``, its semantic ids for ``"semantic_first"``).
    """
    prompts = [tokenizer.continuation_prompt(t) for t in clips]
    return prompts, [int(t.shape[0]) for t in clips]


def check_prompts(layout: AudioTokenLayout, prompts: Sequence[Sequence[int]], first: int = 0) -> list[int]:
    """Validate every prompt (ids in the vocabulary, an open audio span the pattern can continue;
    named ``prompts[first + i]``); returns the number of audio ids each prompt already holds."""
    audio_ids = []
    for i, p in enumerate(prompts, start=first):
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


@dataclass
class PaddedPrompts:
    """A batch of prompts, left-padded: what the decoding loop starts from.

    ids, mask:   LongTensor[B, L] conditional prompts and their attention mask (0 = padding).
    unconditional, unconditional_mask: LongTensor[B, L_u], the caption-less twins classifier-free
                 guidance compares with; None without guidance.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    unconditional: torch.Tensor | None = None
    unconditional_mask: torch.Tensor | None = None

    @classmethod
    def of(
        cls, prompts: Sequence[Sequence[int]], unconditional: Sequence[Sequence[int]] | None, pad_id: int,
        device: torch.device, copies: int = 1,
    ) -> PaddedPrompts:
        """Each prompt (and its twin) ``copies`` times in a row, left-padded with ``pad_id`` on ``device``."""
        def padded(group: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
            rows = [p for p in group for _ in range(copies)]
            ids = pad_sequences(rows, pad_id, side="left").to(device)
            return ids, pad_sequences([[1] * len(p) for p in rows], 0, side="left").to(device)

        return cls(*padded(prompts), *(padded(unconditional) if unconditional is not None else (None, None)))

    @property
    def guided(self) -> bool:
        return self.unconditional is not None


def prompt_batch(
    model: Any, layout: AudioTokenLayout, prompts: Sequence[Sequence[int]], max_frames: torch.Tensor, *,
    unconditional: Sequence[Sequence[int]] | None = None, first: int = 0, copies: int = 1,
) -> tuple[PaddedPrompts, int]:
    """Check a batch of prompts (the batch starts at row ``first`` of the call), size the run and pad them:
    (the ``PaddedPrompts`` with each prompt ``copies`` times, the new ids that let every row reach its
    ``max_frames`` LongTensor[B] and write ``<|audio_end|>``). A ``ValueError`` when the longest prompt
    (conditional or unconditional) plus those ids exceeds the model's context."""
    audio_ids = check_prompts(layout, prompts, first)
    max_new = max(2 * int(m) - s + 1 for m, s in zip(max_frames.tolist(), audio_ids, strict=True))
    context = getattr(model.config, "max_position_embeddings", None)
    for kind, group in (("prompts", prompts), ("unconditional_prompts", unconditional or [])):
        if not group or context is None:
            continue
        longest = max(range(len(group)), key=lambda i: len(group[i]))
        if len(group[longest]) + max_new > context:
            raise ValueError(
                f"{kind}[{first + longest}] has {len(group[longest])} ids and needs up to {max_new} new ids "
                f"({int(max_frames.max())} frames), more than the model's context of {context}; "
                "shorten the prompt or ask for fewer seconds."
            )
    device = next(model.parameters()).device
    return PaddedPrompts.of(prompts, unconditional, layout.pad_id, device, copies), max_new
