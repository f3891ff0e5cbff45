"""Streaming audio generation: each clip in chunks, while the LM is still writing it.

``generate_audio_stream`` and ``continue_audio_stream`` take the arguments of ``generate_audio``
and ``continue_audio`` and return an ``AudioStream`` of ``AudioChunk``s. They start as those do
(``generate.start_run``: the seed, the decoder's generator), so the LM writes the same tokens.

With a codec that decodes window by window (``codec.decode_stream.open_decode_stream``: a
``SemantiCodec`` with its decoder), every batch of prompts runs so: the LM generates in a
background thread (``lm_thread.LMThread``, the same ``generate_tokens`` call and the same draws);
once every clip of the batch has the frames of its next decoder window, those windows are
decoded, cross-faded with the windows before them as a whole decode does, and the samples no
later window changes are yielded; each clip's last chunk comes when it has ended. The waveform is
that of ``codec.decode`` of the same tokens with the same generator. Other codecs decode every
clip at once when the LM has finished (as ``generate_audio``), one chunk per clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from codec.decode_stream import StreamPiece, decodes_by_window, open_decode_stream
from codec.sampling import DecodeSettings
from plumbing.io import pad_stack
from semantilm.generation.generate import RunStart, check_captions, prompt_samples, start_run
from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.lm_thread import LMThread
from semantilm.generation.outputs import AudioGenerationOutput
from semantilm.generation.settings import SamplingSettings, sampling_settings
from semantilm.generation.token_generation import continue_tokens, text_to_tokens
from semantilm.tokens.tokenizer import AudioTextTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.codec_api import AudioCodec

__all__ = ["AudioChunk", "AudioStream", "generate_audio_stream", "continue_audio_stream", "collect_chunks"]

# run(rows, observer, sampling) -> (tokens LongTensor[len(rows) * n, T, 2], frame lengths): one LM call
RunRows = Callable[[range, Any, SamplingSettings], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class AudioChunk:
    """The next samples of one generated clip.

    index:       the clip: its row in ``generate_audio``'s output (prompt i's take k is ``i * n + k``
                 with ``num_return_sequences=n``).
    audio:       FloatTensor[N] samples that follow the clip's earlier chunks (on the codec's device).
    sample_rate: Hz.
    offset:      samples of the clip in its earlier chunks.
    final:       the clip's last chunk (it may hold no samples).
    tokens:      on the final chunk, the clip's codec tokens LongTensor[T, 2]; None before.
    """

    index: int
    audio: torch.Tensor
    sample_rate: int
    offset: int
    final: bool
    tokens: torch.Tensor | None = None


class AudioStream:
    """The chunks of ``generate_audio_stream`` / ``continue_audio_stream``, as they become final
    while the LM writes (the LM runs in a background thread from the first ``next``).

    prompt_samples: per clip, the samples at its start that decode a continuation's prompt (0 for text).
    """

    def __init__(self, chunks: Callable[[], Iterator[AudioChunk]], prompt_samples: list[int]) -> None:
        self._make = chunks
        self._live: Iterator[AudioChunk] | None = None
        self.prompt_samples = prompt_samples

    def __iter__(self) -> AudioStream:
        return self

    def __next__(self) -> AudioChunk:
        if self._live is None:
            self._live = self._make()
        return next(self._live)

    def close(self) -> None:
        """Stop the LM thread of a stream left before its end."""
        if self._live is not None:
            self._live.close()  # type: ignore[attr-defined]


def generate_audio_stream(
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
) -> AudioStream:
    """Text-to-audio as a stream of ``AudioChunk``s; arguments as ``generate_audio``.

    Arguments are checked here; generation starts at the first ``next``. Don't draw from torch's
    global generator while consuming the stream: the LM samples from it in a background thread.
    """
    check_captions(prompts)
    sampling = _check(tokenizer, codec, sampling, generator)

    def run(rows: range, observer: Any, s: SamplingSettings) -> tuple[torch.Tensor, torch.Tensor]:
        return text_to_tokens(model, tokenizer, [prompts[i] for i in rows], sampling=s, speed=lm_speed,
                              progress=progress, observer=observer)

    start = dict(sampling=sampling, decode=decode, generator=generator, progress=progress)
    count = len(prompts) * sampling.num_return_sequences
    return AudioStream(lambda: _chunks(model, tokenizer, codec, len(prompts), run, start), [0] * count)


def continue_audio_stream(
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
) -> AudioStream:
    """Continuation as a stream of ``AudioChunk``s; arguments as ``continue_audio``. The clips are
    encoded here, generation starts at the first ``next``; chunks hold the whole clips, the decoded
    prompt first (``AudioStream.prompt_samples`` of them)."""
    sampling = _check(tokenizer, codec, sampling, generator)
    clips = codec.encode(audio, sample_rate).unbatch()

    def run(rows: range, observer: Any, s: SamplingSettings) -> tuple[torch.Tensor, torch.Tensor]:
        return continue_tokens(model, tokenizer, [clips[i] for i in rows], sampling=s, speed=lm_speed,
                               progress=progress, observer=observer)[:2]

    start = dict(sampling=sampling, decode=decode, generator=generator, progress=progress)
    skip = [prompt_samples(codec, int(c.shape[0])) for c in clips for _ in range(sampling.num_return_sequences)]
    return AudioStream(lambda: _chunks(model, tokenizer, codec, len(clips), run, start), skip)


def collect_chunks(chunks: Iterator[AudioChunk]) -> AudioGenerationOutput:
    """The whole clips of a stream as one ``AudioGenerationOutput`` (rows in ``index`` order)."""
    audio: dict[int, list[torch.Tensor]] = {}
    tokens: dict[int, torch.Tensor] = {}
    sample_rate = 0
    for chunk in chunks:
        audio.setdefault(chunk.index, []).append(chunk.audio)
        sample_rate = chunk.sample_rate
        if chunk.final:
            tokens[chunk.index] = chunk.tokens
    if not audio or sorted(tokens) != list(range(len(audio))):
        raise ValueError(f"the stream ended before every clip's final chunk (clips {sorted(audio)}, ended {sorted(tokens)}).")
    waves, lengths = pad_stack([torch.cat(audio[i]) for i in range(len(audio))])
    token_rows, token_lengths = pad_stack([tokens[i] for i in range(len(tokens))])
    return AudioGenerationOutput(waves, lengths, sample_rate, token_rows, token_lengths)


def _check(tokenizer: AudioTextTokenizer, codec: AudioCodec, sampling: SamplingSettings | None,
           generator: torch.Generator | None) -> SamplingSettings:
    """The stream's own refusals, at creation: a shared global generator, beams."""
    sampling = sampling_settings(sampling)
    tokenizer.layout.check_codec(codec)
    if decodes_by_window(codec):
        if generator is torch.default_generator:
            raise ValueError("generator must not be torch's global generator: the LM samples from it in another "
                             "thread while the decoder draws; pass a torch.Generator of its own, or None.")
        if sampling.num_beams > 1:
            raise ValueError(f"beam search (num_beams={sampling.num_beams}) cannot stream: beams are not final until "
                             "the end; use generate_audio / continue_audio, or num_beams=1.")
    return sampling


# ----- the stream ---------------------------------------------------------------------------
def _chunks(
    model: Any, tokenizer: AudioTextTokenizer, codec: AudioCodec, prompts: int, run: RunRows, start: dict[str, Any]
) -> Iterator[AudioChunk]:
    begun = start_run(model, tokenizer, codec, **start)
    if not decodes_by_window(codec):
        tokens, lengths = run(range(prompts), None, begun.sampling)
        out = begun.decode(codec, tokens, lengths)
        for b, (n, frames) in enumerate(zip(out.lengths.tolist(), lengths.tolist(), strict=True)):
            yield AudioChunk(b, out.audio[b, :n], out.sample_rate, 0, True, tokens[b, :frames])
        return
    size, takes = begun.sampling.batch_size, begun.sampling.num_return_sequences
    for first in range(0, prompts, size):
        yield from _windowed_batch(range(first, min(first + size, prompts)), takes, codec, tokenizer, run, begun)


def _windowed_batch(
    rows: range, takes: int, codec: AudioCodec, tokenizer: AudioTextTokenizer, run: RunRows, begun: RunStart
) -> Iterator[AudioChunk]:
    """The LM in a thread; each decoder window decoded as soon as its frames exist."""
    layout, count = tokenizer.layout, len(rows) * takes
    stream = open_decode_stream(codec, count, begun.settings, generator=begun.generator, progress=begun.progress)
    emit = _Emitter(rows.start * takes, stream.sample_rate, count)
    lm = LMThread(lambda tap: run(rows, tap, begun.sampling), layout.audio_end_id).start()
    try:
        while (ids := lm.wait()) is not None:
            tokens, ended = _rows_so_far(layout, ids)
            yield from emit(stream.feed(tokens, ended), tokens)
            lm.wake_at(ids.shape[1] + max(stream.frames_needed(), 1))  # a frame takes at least one id
        tokens, lengths = lm.result()
    finally:
        lm.close()
    whole = [t[: int(n)] for t, n in zip(tokens, lengths.tolist(), strict=True)]
    yield from emit(stream.feed(whole, [True] * count), whole)


class _Emitter:
    """``StreamPiece``s of one batch -> ``AudioChunk``s: clip numbers and offsets."""

    def __init__(self, first: int, sample_rate: int, rows: int):
        self.first, self.sample_rate, self.offset = first, sample_rate, [0] * rows

    def __call__(self, pieces: list[StreamPiece], tokens: list[torch.Tensor]) -> Iterator[AudioChunk]:
        for piece in pieces:
            b = piece.row
            yield AudioChunk(self.first + b, piece.audio, self.sample_rate, self.offset[b], piece.last,
                             tokens[b] if piece.last else None)
            self.offset[b] += piece.audio.shape[0]


def _rows_so_far(layout: Any, ids: torch.Tensor) -> tuple[list[torch.Tensor], list[bool]]:
    """The whole frames of each row's audio span in ids LongTensor[B, L] so far (LongTensor[T_b, 2]
    each), and whether the row has ended it."""
    spans = [layout.last_span_tokens(row) for row in ids]
    return [tokens for tokens, _ in spans], [ended for _, ended in spans]
