"""Generation entry points: captions or clips -> waveforms (``generate_audio``, ``continue_audio``).

Each runs the LM to the end (``token_generation``: every prompt, ``sampling.batch_size`` at a
time), then decodes every clip with one ``codec.decode`` call, which batches every decoder window.
So ``codec.decode(out.tokens, out.token_lengths, settings, generator=g)`` gives ``out.audio`` for
the same decoder generator ``g``. The streaming twins (``stream``) decode window by window while
the LM writes; they start the same way (``start_run``), so the LM writes the same tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from codec.decode_stream import decodes_by_window
from codec.sampling import DecodeSettings
from plumbing.progress import progress_enabled
from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.outputs import AudioGenerationOutput
from semantilm.generation.settings import SamplingSettings, sampling_settings
from semantilm.generation.token_generation import continue_tokens, text_to_tokens
from semantilm.tokens.tokenizer import AudioTextTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.codec_api import AudioCodec

__all__ = ["generate_audio", "continue_audio", "start_run", "check_captions", "RunStart"]


def generate_audio(
    model: Any,
    tokenizer: AudioTextTokenizer,
    codec: AudioCodec,
    prompts: Sequence[str],
    *,
    sampling: SamplingSettings | None = None,
    decode: DecodeSettings | None = None,
    generator: torch.Generator | None = None,
    lm_speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> AudioGenerationOutput:
    """Text-to-audio: one clip of at most ``sampling.seconds`` per caption, decoded by ``codec``.

    prompts:   captions (str); ``""`` generates without a caption.
    sampling:  how the LM samples and how much (``SamplingSettings``; None: its defaults, 10 s, guidance 3,
               top-k 250); ``num_return_sequences`` n gives rows ``i * n ... i * n + n - 1`` to caption i.
    decode:    how the codec's decoder samples (``codec.DecodeSettings``; None: its defaults).
    generator: draws the decoder's noise; None: for window-by-window codecs a CPU generator seeded
               from torch's global state (drawing nothing from it), for others torch's global generator.
    lm_speed:  the LM's KV cache, ``torch.compile`` and packed linears (``LMSpeed``; None: its defaults).
    progress:  bars over the LM's frames and the decoder's steps; None shows them only on a terminal.
    returns:   ``AudioGenerationOutput`` with audio FloatTensor[B * n, N] at the codec's rate.
    """
    check_captions(prompts)
    run = start_run(model, tokenizer, codec, sampling=sampling, decode=decode, generator=generator, progress=progress)
    tokens, lengths = text_to_tokens(model, tokenizer, prompts, sampling=run.sampling, speed=lm_speed,
                                     progress=run.progress)
    return run.decode(codec, tokens, lengths)


def continue_audio(
    model: Any,
    tokenizer: AudioTextTokenizer,
    codec: AudioCodec,
    audio: list[torch.Tensor] | torch.Tensor,
    sample_rate: int,
    *,
    sampling: SamplingSettings | None = None,
    decode: DecodeSettings | None = None,
    generator: torch.Generator | None = None,
    lm_speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> AudioGenerationOutput:
    """Continue each clip by up to ``sampling.seconds`` of generated audio.

    audio:    list of FloatTensor[N_b], or FloatTensor[B, N] (each row a whole clip), at ``sample_rate``.
    returns:  ``AudioGenerationOutput`` of the whole clips, the decoded prompt first, so that audio and
              tokens agree; ``prompt_lengths`` gives the prompt's samples per row and ``continuations()``
              the new audio alone. With the ``semantic_first`` pattern the prompt gives only semantic ids;
              the acoustic ids of the whole clip, prompt included, are generated.
    sampling, decode, generator, lm_speed, progress: as in ``generate_audio`` (no guidance: a continuation
              has no caption to guide by).
    """
    run = start_run(model, tokenizer, codec, sampling=sampling, decode=decode, generator=generator, progress=progress)
    clips = codec.encode(audio, sample_rate).unbatch()
    tokens, lengths, frames = continue_tokens(model, tokenizer, clips, sampling=run.sampling, speed=lm_speed,
                                              progress=run.progress)
    return run.decode(codec, tokens, lengths, prompt_frames=frames)


@dataclass
class RunStart:
    """What a generation call settled before the LM's first step.

    sampling:  the caller's settings with the seed already applied (the LM calls must not seed again).
    settings:  the decoder's settings.
    generator: the decoder's generator (see ``generate_audio``).
    progress:  whether bars show.
    """

    sampling: SamplingSettings
    settings: DecodeSettings
    generator: torch.Generator | None
    progress: bool

    def decode(
        self, codec: AudioCodec, tokens: torch.Tensor, lengths: torch.Tensor, prompt_frames: list[int] | None = None
    ) -> AudioGenerationOutput:
        """Every clip through one ``codec.decode`` call."""
        out = codec.decode(tokens, lengths, settings=self.settings, generator=self.generator, progress=self.progress)
        prompt = None
        if prompt_frames is not None:
            prompt = torch.tensor([prompt_samples(codec, f) for f in prompt_frames], dtype=torch.long)
        return AudioGenerationOutput(out.audio, out.lengths, out.sample_rate, tokens, lengths, prompt)


def start_run(
    model: Any, tokenizer: AudioTextTokenizer, codec: AudioCodec, *, sampling: SamplingSettings | None,
    decode: DecodeSettings | None, generator: torch.Generator | None, progress: bool | None,
) -> RunStart:
    """Check the settings, put the model in eval mode, seed torch's global generator
    (``sampling.seed``) and settle the decoder's generator: the first steps of every entry point."""
    sampling = sampling_settings(sampling)
    tokenizer.layout.check_codec(codec)
    settings = DecodeSettings() if decode is None else decode
    if not isinstance(settings, DecodeSettings):
        raise TypeError(f"decode must be a codec.DecodeSettings or None, got {type(decode).__name__}.")
    progress = progress_enabled(progress)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    model.eval()
    if generator is None and decodes_by_window(codec):
        digest = hashlib.blake2b(torch.random.get_rng_state().numpy().tobytes(), digest_size=8).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return RunStart(sampling.replace(seed=None), settings, generator, progress)


def prompt_samples(codec: AudioCodec, frames: int) -> int:
    """Samples of a clip's first ``frames`` frames at the codec's rate."""
    return int(round(frames * codec.sample_rate / codec.frame_rate))


def check_captions(prompts: Any) -> None:
    """A ``TypeError`` unless ``prompts`` is a non-empty list of str."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of captions (str), got {prompts!r}.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(p).__name__}.")
