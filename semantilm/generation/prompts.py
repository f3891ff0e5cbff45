"""Generation prompts as lists of LM ids: text-to-audio and continuation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["text_prompts", "continuation_prompts"]


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
