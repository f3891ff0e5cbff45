"""Decoding token sequences that are still being written, window by window (streaming generation).

``DiffusionDecoder.decode`` samples every window of a clip and cross-fades them once all exist.
``WindowStream`` decodes each window as soon as its frames exist and hands out the samples that
no later window changes: everything before the window's overlap with the next one, its head
cross-faded with the previous window's tail by :func:`codec.windowing.overlap_add` itself. A
clip's last window is flushed, and the clip trimmed to ``config.num_samples(frames)``, when the
clip ends. So a clip's pieces concatenate to the waveform ``decode`` assembles from the same
window waveforms.

A window's frames are fixed once a clip has ``start + window_tokens`` of them (the window is the
same whether the clip ends there or goes on), so it is decoded then. Windows run in groups on a
fixed schedule: the first group is window 0 of every clip, and each later group takes twice as many
windows per clip as the one before (at most ``batch_size // rows``, at least one), so the first
audio comes after one window while a long clip needs few decoder calls. A group runs once every
clip has all of its windows in the group or has ended; its windows are ordered window by window,
each in clip order. The sampler's noise is drawn window by window in that order, and the groups
never depend on when or how often ``feed`` is called, so neither does the waveform. (``decode``
draws clip by clip and batches windows its own way; for one clip the draw orders agree, and the
waveforms agree up to the float noise of batching windows differently.) A clip's last window, when shorter than a whole one, goes through
the vocoder only as far as the clip reaches, as in ``decode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from codec.decoder import DiffusionDecoder
from codec.sampling import DecodeSettings, decode_settings
from codec.vocoder import vocoder_output_samples
from codec.windowing import overlap_add, split_windows
from plumbing.io import pad_stack
from plumbing.progress import progress_enabled

__all__ = ["StreamPiece", "WindowStream", "decodes_by_window", "open_decode_stream"]


@dataclass
class StreamPiece:
    """New samples of one clip.

    row:   the clip (its index in ``feed``'s lists).
    audio: FloatTensor[n] samples that follow the clip's previous pieces (on the decoder's device).
    last:  the clip's last piece (its clip has ended and is complete).
    """

    row: int
    audio: torch.Tensor
    last: bool


class WindowStream:
    """Decodes ``rows`` clips window by window while their tokens grow; see the module docstring.

    decoder:            the codec's ``DiffusionDecoder``.
    acoustic_codebook, semantic_centroids: the lookup tables ``decode`` takes.
    settings:           sampler, steps, guidance and eta (default ``DecodeSettings()``).
    generator:          draws the sampler's noise (None: torch's global generator).
    batch_size:         windows per UNet call.
    progress:           a bar over the UNet steps of each window group; None shows it only when
                        stderr is a terminal.
    """

    def __init__(
        self, decoder: DiffusionDecoder, acoustic_codebook: torch.Tensor, semantic_centroids: torch.Tensor,
        rows: int, settings: DecodeSettings | None = None, *, generator: torch.Generator | None = None,
        batch_size: int = 8, progress: bool | None = None,
    ) -> None:
        for name, value in (("rows", rows), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        self.decoder = decoder
        self.tables = (acoustic_codebook, semantic_centroids)
        self.settings = decode_settings(settings)
        self.generator = generator
        self.batch_size = batch_size
        self.progress = progress_enabled(progress)
        self.rows = rows
        c = decoder.config
        self.sample_rate = c.sample_rate
        self._window, self._overlap = c.window_tokens, c.window_overlap_tokens
        self._overlap_samples = c.window_overlap_samples
        self._tokens: list[torch.Tensor] = [torch.zeros(0, 2, dtype=torch.long)] * rows
        self._ended = [False] * rows
        self._first, self._size = 0, 1  # the next group: its first window and windows per clip
        self._max_size = max(1, batch_size // rows)
        self._windows = [0] * rows  # windows decoded per clip
        self._last_wave: list[torch.Tensor | None] = [None] * rows
        self._ready: list[list[torch.Tensor]] = [[] for _ in range(rows)]  # final samples not yet handed out
        self._emitted = [0] * rows
        self._finished = [False] * rows

    @property
    def done(self) -> bool:
        """Every clip has ended and been handed out whole."""
        return all(self._finished)

    def feed(self, tokens: Sequence[torch.Tensor], ended: Sequence[bool]) -> list[StreamPiece]:
        """Take every clip's frames so far and return the samples that became final.

        tokens: one LongTensor[T_b, 2] per clip, all its frames so far (a clip's frames only grow).
        ended:  per clip, whether ``tokens[b]`` is the whole clip.
        returns: the new pieces, at most one per clip, in clip order; each clip's last piece has
                 ``last=True`` (once, possibly with no samples).
        """
        self._update(tokens, ended)
        with torch.inference_mode():
            while (group := self._next_group()) is not None:
                self._decode_group(group)
                self._first, self._size = self._first + self._size, min(2 * self._size, self._max_size)
        return self._emit()

    def frames_needed(self) -> int:
        """Frames the slowest unfinished clip still has to write before the next window group can
        be decoded (0 when nothing waits on frames)."""
        stop = self._group_stop()
        waiting = [stop - t.shape[0] for t, e in zip(self._tokens, self._ended, strict=True) if not e]
        return max([w for w in waiting if w > 0], default=0)

    # ----- internals -------------------------------------------------------------------------
    def _update(self, tokens: Sequence[torch.Tensor], ended: Sequence[bool]) -> None:
        if len(tokens) != self.rows or len(ended) != self.rows:
            raise ValueError(f"feed needs tokens and ended for {self.rows} clips, got {len(tokens)} and {len(ended)}.")
        for b, (t, e) in enumerate(zip(tokens, ended, strict=True)):
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[-1] != 2:
                raise ValueError(f"tokens[{b}] must be a LongTensor[T, 2], got {getattr(t, 'shape', type(t))}.")
            before = self._tokens[b].shape[0]
            if t.shape[0] < before or (self._ended[b] and (t.shape[0] != before or not e)):
                raise ValueError(
                    f"clip {b} had {before} frames{' and had ended' if self._ended[b] else ''}; it now has "
                    f"{t.shape[0]}{'' if e else ' and goes on'}: a clip's frames may only grow until it ends."
                )
            if before and not torch.equal(t[:before].cpu().long(), self._tokens[b]):
                raise ValueError(f"clip {b}'s first {before} frames changed; a clip's frames may only grow.")
            if e and t.shape[0] == 0:
                raise ValueError(f"clip {b} ended without frames; decoding needs at least one.")
            self._tokens[b], self._ended[b] = t.long().cpu(), bool(e)

    def _group_stop(self) -> int:
        """Frames a clip that goes on needs for the next group: the end of its last window."""
        return (self._first + self._size - 1) * (self._window - self._overlap) + self._window

    def _next_group(self) -> list[tuple[int, int, int, int]] | None:
        """(clip, window, start, stop) of every window of the next group, window by window and
        each in clip order; None while a clip still writes its frames or when no clip has such a window."""
        step, windows = self._window - self._overlap, range(self._first, self._first + self._size)
        spans: list[list[tuple[int, int, int]]] = []
        for t, ended in zip(self._tokens, self._ended, strict=True):
            if ended:
                mine = split_windows(t.shape[0], self._window, self._overlap)
                spans.append([(k, *mine[k]) for k in windows if k < len(mine)])
            elif t.shape[0] >= self._group_stop():
                spans.append([(k, k * step, k * step + self._window) for k in windows])
            else:
                return None
        group = [(b, *clip[i]) for i in range(self._size) for b, clip in enumerate(spans) if i < len(clip)]
        return group or None

    def _decode_group(self, group: list[tuple[int, int, int, int]]) -> None:
        codebook, centroids = self.tables
        for lo in range(0, len(group), self.batch_size):
            part = group[lo : lo + self.batch_size]
            tokens, lengths = pad_stack([self._tokens[b][start:stop] for b, _, start, stop in part])
            # Each window as a clip of at most window_tokens frames: decode_latents plans it as one window.
            latents, _, _ = self.decoder.decode_latents(
                tokens, codebook, centroids, lengths, self.settings, generator=self.generator,
                batch_size=self.batch_size, progress=self.progress)
            waves = self.decoder.latents_to_waveform(latents, self._wanted(part))[1]
            for (b, _, _, _), wave in zip(part, waves, strict=True):
                self._add_window(b, wave)

    def _wanted(self, part: list[tuple[int, int, int, int]]) -> list[int]:
        """Leading samples wanted of each window's waveform (the vocoder skips the rest). A window
        shorter than ``window_tokens`` frames is its clip's last and is only decoded once the clip
        has ended: it is cut where the clip ends, as ``decode`` cuts it. Every other window is kept
        whole, whatever the stream knows when it decodes it, so no sample depends on timing."""
        config = self.decoder.config
        wanted = []
        for b, k, start, stop in part:
            if stop - start < self._window:
                frames = self._tokens[b].shape[0]
                wanted.append(self.decoder.used_samples(self.decoder.plan_windows([frames]), [frames])[k])
            else:
                wanted.append(vocoder_output_samples(config, config.segment_frames))
        return wanted

    def _add_window(self, b: int, wave: torch.Tensor) -> None:
        """Append the samples of clip b that window ``wave`` [L] makes final (all but its tail)."""
        length, overlap = wave.shape[0], self._overlap_samples
        previous = self._last_wave[b]
        if overlap == 0:
            final = wave
        elif previous is None:
            final = wave[: length - overlap]
        else:  # the pair cross-faded as decode does; its second window's tail waits for the next one
            final = overlap_add(torch.stack([previous, wave]), overlap)[length - overlap : 2 * (length - overlap)]
        self._ready[b].append(final)
        self._last_wave[b] = wave
        self._windows[b] += 1

    def _emit(self) -> list[StreamPiece]:
        config = self.decoder.config
        pieces = []
        for b in range(self.rows):
            if self._finished[b]:
                continue
            frames = self._tokens[b].shape[0]
            last = self._ended[b] and self._windows[b] == len(split_windows(frames, self._window, self._overlap))
            if last and self._overlap_samples:  # nothing follows the last window: its tail is final as it is
                self._ready[b].append(self._last_wave[b][-self._overlap_samples :])
            if not self._ready[b] and not last:
                continue
            ready = torch.cat(self._ready[b]) if self._ready[b] else torch.zeros(0, device=self.decoder.device)
            keep = max(min(ready.shape[0], config.num_samples(frames) - self._emitted[b]), 0)
            self._ready[b] = [ready[keep:]] if keep < ready.shape[0] and not last else []
            self._emitted[b] += keep
            self._finished[b] = last
            if keep or last:
                pieces.append(StreamPiece(b, ready[:keep], last))
        return pieces


def open_decode_stream(
    codec: Any, rows: int, settings: DecodeSettings | None = None, *, generator: torch.Generator | None = None,
    batch_size: int = 8, progress: bool | None = None,
) -> WindowStream | None:
    """A ``WindowStream`` over ``codec``'s diffusion decoder (a ``SemantiCodec`` with its decoder);
    None for a codec without one, which can only decode whole clips."""
    if not decodes_by_window(codec):
        return None
    return WindowStream(codec.decoder, codec.acoustic.codebook, codec.semantic.centroids, rows, settings,
                        generator=generator, batch_size=batch_size, progress=progress)


def decodes_by_window(codec: Any) -> bool:
    """Whether ``codec`` has a diffusion decoder that ``open_decode_stream`` can run window by window."""
    return isinstance(getattr(codec, "decoder", None), DiffusionDecoder)
