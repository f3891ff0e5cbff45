"""Streaming audio generation: each clip in chunks, while the LM is still writing it.

``generate_audio_stream`` and ``continue_audio_stream`` take the arguments of ``generate_audio``
and ``continue_audio`` and return an ``AudioStream`` of ``AudioChunk``s; those two call its
``collect()``, so a streamed call and a whole one give the same samples for the same seed.

With a codec that decodes window by window (``codec.decode_stream.open_decode_stream``: a
``SemantiCodec`` with its decoder), every batch of prompts runs so: the LM generates in a
background thread (``lm_thread.LMThread``, the same ``generate_tokens`` call and the same draws as
``text_to_tokens``); once every clip of the batch has the frames of its next decoder window, those
windows are decoded, cross-faded with the windows before them exactly as a whole decode does, and
the samples no later window changes are yielded; each clip's last chunk comes when it has ended.
The decoder's noise comes from ``generator``, or when that is None from a CPU generator seeded
with a hash of torch's global generator state (drawing nothing from it, so the LM's tokens stay
those of the same seed without streaming). Other codecs decode each batch whole once its LM has
finished, one chunk per clip, with ``generator`` as given.

``AudioStream.collect()`` runs the same steps without the thread: each batch's LM to its end, then
all its windows through the same ``WindowStream``. The samples are those of the live stream (a
window's samples never depend on when its frames arrived); the time is that of the LM plus the
decoder, without the two sharing the CPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from codec.decode_stream import StreamPiece, decodes_by_window, open_decode_stream
from codec.sampling import DecodeSettings
from plumbing.io import pad_stack
from plumbing.progress import progress_enabled
from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.lm_thread import LMThread
from semantilm.generation.outputs import AudioGenerationOutput
from semantilm.generation.prepare import check_takes, last_audio_span, positive_int
from semantilm.generation.token_generation import continue_tokens, text_to_tokens
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from codec import DecodeOutput
    from semantilm.codec_api import AudioCodec

__all__ = ["AudioChunk", "AudioStream", "generate_audio_stream", "continue_audio_stream", "collect_chunks"]


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
    """The chunks of ``generate_audio_stream`` / ``continue_audio_stream``.

    Iterate it for ``AudioChunk``s as they become final, while the LM writes (the LM runs in a
    background thread from the first ``next``). Or call ``collect()`` instead for the whole clips
    as ``AudioGenerationOutput``: the same samples, computed one step after another, which costs
    less in all than the live stream where the LM and the decoder share the CPU.
    """

    def __init__(self, model: Any, codec: AudioCodec, layout: AudioTokenLayout, batches: list[_Batch],
                 seed: int | None, settings: DecodeSettings, generator: torch.Generator | None,
                 progress: bool | None = None) -> None:
        self._args = (model, codec, layout, batches, seed, settings, generator, progress)
        self._live: Iterator[AudioChunk] | None = None

    def __iter__(self) -> AudioStream:
        return self

    def __next__(self) -> AudioChunk:
        if self._live is None:
            self._live = _chunks(*self._args, live=True)
        return next(self._live)

    def close(self) -> None:
        """Stop the LM thread of a stream left before its end."""
        if self._live is not None:
            self._live.close()  # type: ignore[attr-defined]

    def collect(self) -> AudioGenerationOutput:
        """Every clip whole (rows in clip order); only on a stream not yet iterated."""
        if self._live is not None:
            raise RuntimeError("collect() needs a stream that has not been iterated; call the stream function again.")
        self._live = iter(())
        return collect_chunks(_chunks(*self._args, live=False))


@dataclass
class _Batch:
    """One LM call: ``run(observer)`` -> (tokens LongTensor[rows, T, 2], frame lengths LongTensor[rows])."""

    run: Callable[[Any], tuple[torch.Tensor, torch.Tensor]]
    rows: int
    skip: list[int]  # samples dropped at the start of each row (the prompt of a continuation)


def generate_audio_stream(
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
) -> AudioStream:
    """Text-to-audio as a stream of ``AudioChunk``s; arguments as ``generate_audio``.

    Arguments are checked here; generation starts at the first ``next``. Don't draw from torch's
    global generator while consuming the stream: the LM samples from it in a background thread.
    """
    _check_captions(prompts)
    layout = tokenizer.layout
    layout.check_codec(codec)
    max_frames = layout.frames_for_seconds(seconds)
    n = positive_int(num_return_sequences, "num_return_sequences")
    check_takes(do_sample, top_k, n)
    progress = progress_enabled(progress)
    sampling = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, num_return_sequences=n,
                    speed=lm_speed, progress=progress)

    def batch(rows: range) -> _Batch:
        captions = [prompts[i] for i in rows]

        def run(observer: Any) -> tuple[torch.Tensor, torch.Tensor]:
            return text_to_tokens(model, tokenizer, captions, max_frames, guidance_scale, observer=observer, **sampling)

        return _Batch(run, len(captions) * n, [0] * (len(captions) * n))

    batches = [batch(rows) for rows in _batches(len(prompts), batch_size)]
    return AudioStream(model, codec, layout, batches, seed, _settings(codec, decode, generator), generator, progress)


def continue_audio_stream(
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
) -> AudioStream:
    """Continuation as a stream of ``AudioChunk``s; arguments as ``continue_audio`` (the clips are
    encoded here, generation starts at the first ``next``). Without ``return_prompt`` a clip's
    chunks start where its prompt ends, so the first comes once the window holding that point is decoded."""
    layout = tokenizer.layout
    layout.check_codec(codec)
    new_frames = layout.frames_for_seconds(seconds)
    n = positive_int(num_return_sequences, "num_return_sequences")
    check_takes(do_sample, top_k, n)
    settings = _settings(codec, decode, generator)
    clips = codec.encode(audio, sample_rate, lengths).unbatch()
    progress = progress_enabled(progress)
    sampling = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, num_return_sequences=n,
                    speed=lm_speed, progress=progress)

    def batch(rows: range) -> _Batch:
        part = [clips[i] for i in rows]

        def run(observer: Any) -> tuple[torch.Tensor, torch.Tensor]:
            return continue_tokens(model, tokenizer, part, new_frames, observer=observer, **sampling)[:2]

        frames = [int(c.shape[0]) for c in part for _ in range(n)]
        skip = [0 if return_prompt else int(round(f * codec.sample_rate / layout.frame_rate)) for f in frames]
        return _Batch(run, len(frames), skip)

    batches = [batch(rows) for rows in _batches(len(clips), batch_size)]
    return AudioStream(model, codec, layout, batches, seed, settings, generator, progress)


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


# ----- the stream ---------------------------------------------------------------------------
def _chunks(
    model: Any, codec: AudioCodec, layout: AudioTokenLayout, batches: list[_Batch], seed: int | None,
    settings: DecodeSettings, generator: torch.Generator | None, progress: bool | None, live: bool,
) -> Iterator[AudioChunk]:
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    windowed = decodes_by_window(codec)
    if windowed and generator is None:
        generator = _decoder_generator()

    first = 0
    for batch in batches:
        if windowed:
            yield from _windowed_batch(batch, first, codec, layout, settings, generator, live, progress)
        else:
            yield from _whole_batch(batch, first, codec, settings, generator)
        first += batch.rows


def _windowed_batch(
    batch: _Batch, first: int, codec: AudioCodec, layout: AudioTokenLayout, settings: DecodeSettings,
    generator: torch.Generator, live: bool, progress: bool | None = None,
) -> Iterator[AudioChunk]:
    """Live: the LM in a thread, each decoder window decoded as soon as its frames exist.
    Otherwise the LM to its end, then every window."""
    stream = open_decode_stream(codec, batch.rows, settings, generator=generator, progress=progress)
    maker = _ChunkMaker(first, batch.skip, stream.sample_rate)
    if live:
        lm = LMThread(batch.run, layout.audio_end_id).start()
        try:
            while (ids := lm.wait()) is not None:
                tokens, ended = _rows_so_far(layout, ids)
                yield from maker.chunks(stream.feed(tokens, ended), tokens)
                lm.wake_at(ids.shape[1] + max(stream.frames_needed(), 1))  # a frame takes at least one id
            tokens, lengths = lm.result()
        finally:
            lm.close()
    else:
        tokens, lengths = batch.run(None)
    whole = _trimmed(tokens, lengths)
    yield from maker.chunks(stream.feed(whole, [True] * batch.rows), whole)


def _whole_batch(
    batch: _Batch, first: int, codec: AudioCodec, settings: DecodeSettings, generator: torch.Generator | None
) -> Iterator[AudioChunk]:
    """The LM to the end, then one ``codec.decode`` of the batch: one final chunk per clip."""
    tokens, lengths = batch.run(None)
    dec = _decode(codec, tokens, lengths, settings, generator)
    maker = _ChunkMaker(first, batch.skip, dec.sample_rate)
    pieces = [StreamPiece(b, dec.audio[b, : int(n)], True) for b, n in enumerate(dec.lengths.tolist())]
    yield from maker.chunks(pieces, _trimmed(tokens, lengths))


class _ChunkMaker:
    """``StreamPiece``s -> ``AudioChunk``s: clip numbers, offsets, and the samples each clip skips."""

    def __init__(self, first: int, skip: list[int], sample_rate: int):
        self.first, self.skip, self.sample_rate = first, list(skip), sample_rate
        self.offset = [0] * len(skip)

    def chunks(self, pieces: list[StreamPiece], tokens: list[torch.Tensor]) -> Iterator[AudioChunk]:
        for piece in pieces:
            b, audio = piece.row, piece.audio
            cut = min(self.skip[b], audio.shape[0])
            audio, self.skip[b] = audio[cut:], self.skip[b] - cut
            if audio.shape[0] or piece.last:
                yield AudioChunk(self.first + b, audio, self.sample_rate, self.offset[b], piece.last,
                                 tokens[b] if piece.last else None)
                self.offset[b] += audio.shape[0]


def _trimmed(tokens: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Each row of padded tokens LongTensor[B, T, 2] cut to its frame length."""
    return [t[: int(n)] for t, n in zip(tokens, lengths.tolist(), strict=True)]


def _rows_so_far(layout: AudioTokenLayout, ids: torch.Tensor) -> tuple[list[torch.Tensor], list[bool]]:
    """The whole frames of each row's audio span in ids LongTensor[B, L] so far (LongTensor[T_b, 2]
    each), and whether the row has ended it."""
    tokens, ended = [], []
    for row in ids:
        span, done = last_audio_span(layout, row)
        tokens.append(layout.span_to_tokens(span))
        ended.append(done)
    return tokens, ended


def _decoder_generator() -> torch.Generator:
    """A CPU generator seeded from torch's global generator state, which it leaves untouched."""
    digest = hashlib.blake2b(torch.random.get_rng_state().numpy().tobytes(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


# ----- argument checks and the whole-clip decode ---------------------------------------------
def _settings(codec: AudioCodec, decode: DecodeSettings | None, generator: torch.Generator | None) -> DecodeSettings:
    settings = DecodeSettings() if decode is None else decode
    if not isinstance(settings, DecodeSettings):
        raise TypeError(f"decode must be a codec.DecodeSettings or None, got {type(decode).__name__}.")
    if generator is torch.default_generator and decodes_by_window(codec):
        raise ValueError("generator must not be torch's global generator: the LM samples from it in another thread "
                         "while the decoder draws; pass a torch.Generator of its own, or None.")
    return settings


def _decode(
    codec: AudioCodec, tokens: torch.Tensor, lengths: torch.Tensor, settings: DecodeSettings,
    generator: torch.Generator | None,
) -> DecodeOutput:
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
