"""Generation entry points: captions or clips -> waveforms (``generate_audio``, ``continue_audio``),
and LM ids -> codec tokens (``generate_tokens``, ``text_to_tokens``, ``continue_tokens``, from
``token_generation``).

``generate_audio`` and ``continue_audio`` collect their streaming twins
(``stream.generate_audio_stream``, ``stream.continue_audio_stream``) with ``AudioStream.collect``:
one code path, so a streamed call yields exactly the samples of the whole call with the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from codec.sampling import DecodeSettings
from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.outputs import AudioGenerationOutput
from semantilm.generation.stream import continue_audio_stream, generate_audio_stream
from semantilm.generation.token_generation import (
    GUIDANCE_MODES,
    continue_tokens,
    generate_tokens,
    text_to_tokens,
)
from semantilm.tokens.tokenizer import AudioTextTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.codec_api import AudioCodec

__all__ = [
    "GUIDANCE_MODES", "LMSpeed", "generate_tokens", "text_to_tokens", "continue_tokens", "generate_audio", "continue_audio",
]


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
    num_return_sequences: int = 1,
    lm_speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> AudioGenerationOutput:
    """Text-to-audio: one clip of at most ``seconds`` per caption, decoded by ``codec``.

    prompts:        captions (str); ``""`` generates without a caption.
    guidance_scale: classifier-free guidance against the caption-less prompt (1 = off).
    batch_size:     captions per LM call (and per decoder stream).
    seed:           seeds torch's global generator before the LM samples.
    decode:         how the codec's decoder samples (``codec.DecodeSettings``; None: its defaults).
    generator:      draws the decoder's noise; None: a generator seeded from torch's global state
                    for window-by-window codecs (``stream``), torch's global generator for others.
    num_return_sequences: clips per caption (rows ``i * n ... i * n + n - 1`` belong to caption i);
                    more than one needs sampling (``do_sample=True``, ``top_k`` not 1): a ``ValueError``
                    otherwise, as the takes would be identical.
    lm_speed:       the LM's KV cache and ``torch.compile`` (``LMSpeed``; None: dynamic cache, eager).
    progress:       bars over the LM's frames and the decoder's steps; None shows them only when
                    stderr is a terminal.
    returns:        ``AudioGenerationOutput`` with audio FloatTensor[B * n, N] at the codec's rate.
    """
    return generate_audio_stream(
        model, tokenizer, codec, prompts, seconds, guidance_scale, do_sample, temperature, top_k, top_p,
        batch_size, seed, decode, generator, num_return_sequences, lm_speed, progress,
    ).collect()


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
    num_return_sequences: int = 1,
    lm_speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> AudioGenerationOutput:
    """Continue each clip by ``seconds`` of generated audio.

    audio:         list of FloatTensor[N_b] or FloatTensor[B, N] (+ ``lengths``) at ``sample_rate``.
    return_prompt: when false, the returned audio holds only the continuation; the decoder
                   still sees prompt + continuation so that the two join smoothly. ``tokens``
                   always hold the whole clip (prompt frames first).
    decode, generator, num_return_sequences, lm_speed, progress: as in ``generate_audio``.
    With the ``semantic_first`` pattern the prompt gives only semantic ids; the acoustic ids of
    the whole clip, prompt included, are generated.
    """
    return continue_audio_stream(
        model, tokenizer, codec, audio, seconds, sample_rate, lengths, return_prompt, do_sample, temperature,
        top_k, top_p, batch_size, seed, decode, generator, num_return_sequences, lm_speed, progress,
    ).collect()
