"""The decoder's one window loop: token frames -> waveforms, window by window.

Every decode runs through ``WindowStream``: ``DiffusionDecoder.decode`` (and so ``SemantiCodec.decode``)
feeds it every clip whole and collects, streaming generation feeds it each clip's frames while the LM
writes them. The stream decodes each window once its frames are fixed and hands out the samples that no
later window changes: everything before the window's overlap with the next one, its head cross-faded
with the previous window's tail by :func:`codec.windowing.overlap_add` itself. A clip's last window is
flushed, and the clip trimmed to ``config.num_samples(frames)``, when the clip ends; a clip's pieces
concatenate to the official cross-fade of its window waveforms.

**Noise order.** The windows of the clips of one call are ordered window by window, each window index
in clip order: window 0 of clip 0, 1, ..., then window 1 of every clip that has one, and so on (the
order of :class:`codec.windowing.WindowPlan`). The sampler's noise is drawn in that order, a window at a
time (x_T, then DDIM's step noises: the official per-window draws), and recorded ``noise[i]`` belongs to
the i-th window in it (:class:`WindowNoise`). A stream can draw in no other order: a clip's window count
is known only once it ends. For one clip it is the official order. The draws do not depend on
``batch_size``, on when or how often ``feed`` is called, nor on how windows are grouped into decoder
calls; they do depend on which clips share a call (clips decoded one call each draw differently).

**Schedule.** A window's frames are fixed once its clip has ``start + window_tokens`` frames, or has
ended. Windows run in groups: the first group is window 0 of every clip, and each later group takes
twice as many windows per clip as the one before (at most ``batch_size // rows``, at least one), so
the first audio comes after one window while a long clip needs few decoder calls; a group runs once
every clip has all of its windows in the group or has ended. When every clip has ended, the next
group is every window left, ``batch_size`` windows per UNet call: fed whole, the stream is a whole
decode. Only the grouping depends on when frames arrive, so a stream fed piece by piece gives the
samples of one fed whole up to the float noise of batching windows differently. A window of a clip
that has ended goes through the vocoder only as far as the clip's audio reaches (as
:func:`codec.windowing.used_samples` says); a window decoded while its clip goes on is vocoded whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from codec.sampling import (
    DecodeSettings,
    check_sampler_args,
    decode_settings,
    num_noise_draws,
    num_sampler_steps,
)
from codec.vocoder import vocoder_output_samples
from codec.windowing import WindowPlan, overlap_add, split_windows
from plumbing.io import pad_stack
from plumbing.progress import progress_bar, progress_enabled

__all__ = ["StreamPiece", "WindowNoise", "WindowStream", "check_noise", "decodes_by_window", "open_decode_stream"]


@runtime_checkable
class WindowDecoder(Protocol):
    """What the stream calls on the decoder (``codec.decoder.DiffusionDecoder`` provides it)."""

    config: Any
    device: torch.device

    def draw_noise(self, n_windows: int, draws: int, generator: torch.Generator | None, device: Any) -> torch.Tensor: ...
    def plan_windows(self, lengths: Sequence[int]) -> WindowPlan: ...
    def window_features(self, tokens: torch.Tensor, plan: WindowPlan, acoustic_codebook: torch.Tensor,
                        semantic_centroids: torch.Tensor) -> torch.Tensor: ...
    def sample_windows(self, features: torch.Tensor, settings: DecodeSettings, noise: WindowNoise, *,
                       batch_size: int, bar: Any = None) -> torch.Tensor: ...
    def latents_to_waveform(self, latents: torch.Tensor, samples: Sequence[int] | None = None) -> Any: ...
    def used_samples(self, plan: WindowPlan, lengths: Sequence[int]) -> list[int]: ...


class WindowNoise:
    """The sampler's Gaussian draws, handed out window after window in the noise order (module docstring).

    Drawn from ``generator`` (None: torch's global generator), one [draws, C, H, W] tensor per window;
    or taken in turn from recorded ``noise`` [n_windows, draws, C, H, W] (checked by :func:`check_noise`).
    """

    def __init__(self, decoder: WindowDecoder, draws: int, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None) -> None:
        if noise is not None and generator is not None:
            raise ValueError("pass either noise= or generator=, not both.")
        self.decoder, self.draws, self.generator, self.noise = decoder, draws, generator, noise
        self.taken = 0

    def take(self, n_windows: int) -> torch.Tensor:
        """The draws of the next ``n_windows`` windows, [n_windows, draws, C, H, W] on the decoder's device."""
        if self.noise is None:
            out = self.decoder.draw_noise(n_windows, self.draws, self.generator, self.decoder.device)
        elif self.taken + n_windows > self.noise.shape[0]:
            raise ValueError(f"noise holds the draws of {self.noise.shape[0]} windows, but the clips have more "
                             "windows: pass one row per window of all the clips (in the order of codec.windowing.WindowPlan).")
        else:
            out = self.noise[self.taken : self.taken + n_windows].to(self.decoder.device)
        self.taken += n_windows
        return out


def check_noise(noise: torch.Tensor | None, config: Any, settings: DecodeSettings,
                n_windows: int | None = None) -> torch.Tensor | None:
    """Recorded ``noise`` as [n_windows, draws, C, H, W] (a size-1 axis after ``draws`` is dropped), or a
    clear error for another shape; ``draws = num_noise_draws(...)``, or ``steps + 1`` for a deterministic
    sampler (which uses only x_T). ``n_windows`` None accepts any number of windows."""
    if noise is None:
        return None
    latent = (config.latent_channels, config.latent_time, config.latent_freq)
    if not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
        raise TypeError(f"noise must be a float tensor, got {type(noise).__name__}.")
    if noise.dim() == 6 and noise.shape[2] == 1:
        noise = noise.squeeze(2)
    sampler, steps = settings.sampler, settings.steps
    allowed = {num_noise_draws(sampler, steps, config.diffusion_steps_train)} | ({steps + 1} if sampler != "ddim" else set())
    windows_ok = n_windows is None or (noise.dim() > 0 and noise.shape[0] == n_windows)
    if noise.dim() != 5 or not windows_ok or noise.shape[1] not in allowed or tuple(noise.shape[2:]) != latent:
        raise ValueError(
            f"noise must have shape [n_windows{'' if n_windows is None else f'={n_windows}'}, "
            f"{' or '.join(map(str, sorted(allowed)))}, {', '.join(map(str, latent))}] for sampler={sampler!r}, "
            f"steps={steps} (windows in the order of codec.windowing.WindowPlan); got {tuple(noise.shape)}."
        )
    return noise


def check_token_ids(semantic: torch.Tensor, acoustic: torch.Tensor, semantic_rows: int, acoustic_rows: int) -> None:
    """A ``ValueError`` when a semantic or acoustic id is outside its lookup table."""
    for name, ids, rows, field in (("semantic", semantic, semantic_rows, "semantic_codebook_size"),
                                   ("acoustic", acoustic, acoustic_rows, "acoustic_codebook_size")):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= rows):
            raise ValueError(
                f"{name} token ids must be in [0, {rows}) for this codec ({field}={rows}); "
                f"got values in [{int(ids.min())}, {int(ids.max())}]."
            )


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
    generator:          draws the sampler's noise (None: torch's global generator);
    noise:              or the recorded draws, one row per window in the noise order.
    batch_size:         windows per UNet call.
    progress:           bars over the UNet steps and the VAE + vocoder batches of each window group;
                        None shows them only when stderr is a terminal.
    """

    def __init__(
        self, decoder: WindowDecoder, acoustic_codebook: torch.Tensor, semantic_centroids: torch.Tensor,
        rows: int, settings: DecodeSettings | None = None, *, generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None, batch_size: int = 8, progress: bool | None = None,
    ) -> None:
        for name, value in (("rows", rows), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        c = decoder.config
        self.decoder = decoder
        self.tables = (acoustic_codebook.to(decoder.device).float(), semantic_centroids.to(decoder.device).float())
        self.settings = decode_settings(settings)
        check_sampler_args(self.settings.sampler, self.settings.steps, c.diffusion_steps_train)
        draws = num_noise_draws(self.settings.sampler, self.settings.steps, c.diffusion_steps_train)
        self.noise = WindowNoise(decoder, draws, generator, check_noise(noise, c, self.settings))
        self.batch_size = batch_size
        self.progress = progress_enabled(progress)
        self.rows = rows
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
            while (next_group := self._next_group()) is not None:
                group, size = next_group
                self._decode_group(group)
                self._first, self._size = self._first + size, min(2 * self._size, self._max_size)
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
            new = t[before:].long().cpu()
            check_token_ids(new[:, 0], new[:, 1], self.tables[1].shape[0], self.tables[0].shape[0])
            self._tokens[b], self._ended[b] = t.long().cpu(), bool(e)

    def _group_stop(self) -> int:
        """Frames a clip that goes on needs for the next group: the end of its last window."""
        return (self._first + self._size - 1) * (self._window - self._overlap) + self._window

    def _next_group(self) -> tuple[list[tuple[int, int, int, int]], int] | None:
        """((clip, window, start, stop) of every window of the next group, in the noise order; the
        window indices it covers per clip); None while a clip still writes its frames or when no clip
        has such a window. Once every clip has ended, the group is every window left."""
        step = self._window - self._overlap
        spans: list[list[tuple[int, int]]] = []
        for t, ended in zip(self._tokens, self._ended, strict=True):
            if ended:
                spans.append(split_windows(t.shape[0], self._window, self._overlap))
            elif t.shape[0] >= self._group_stop():
                last = self._first + self._size
                spans.append([(k * step, k * step + self._window) for k in range(last)])
            else:
                return None
        size = max(len(s) for s in spans) - self._first if all(self._ended) else self._size
        group = [(b, k, *clip[k]) for k in range(self._first, self._first + size)
                 for b, clip in enumerate(spans) if k < len(clip)]
        return (group, size) if group else None

    def _decode_group(self, group: list[tuple[int, int, int, int]]) -> None:
        """Sample the group's windows, ``batch_size`` per UNet call, then their waveforms."""
        tokens, _ = pad_stack([self._tokens[b][start:stop] for b, _, start, stop in group])
        plan = WindowPlan(list(range(len(group))), [(0, stop - start) for _, _, start, stop in group])
        features = self.decoder.window_features(tokens, plan, *self.tables)
        s, c, size = self.settings, self.decoder.config, self.batch_size
        chunks = range(0, len(group), size)
        steps = num_sampler_steps(s.sampler, s.steps, c.diffusion_steps_train)
        with progress_bar(total=len(chunks) * steps, desc=f"{s.sampler} ({len(group)} windows)", unit="step",
                          progress=self.progress) as bar:
            latents = self.decoder.sample_windows(features, s, self.noise, batch_size=size, bar=bar)
        wanted = self._wanted(group)
        for lo in progress_bar(chunks, desc="VAE + vocoder", progress=self.progress):
            waves = self.decoder.latents_to_waveform(latents[lo : lo + size], wanted[lo : lo + size])[1]
            for (b, _, _, _), wave in zip(group[lo : lo + size], waves, strict=True):
                self._add_window(b, wave)

    def _wanted(self, group: list[tuple[int, int, int, int]]) -> list[int]:
        """Leading samples wanted of each window's waveform (the vocoder skips the rest): for a clip
        that has ended, what reaches its audio (as ``decode`` cuts it); a window of a clip that goes
        on is kept whole."""
        config = self.decoder.config
        whole = vocoder_output_samples(config, config.segment_frames)
        used: dict[int, list[int]] = {}
        for b in {b for b, *_ in group if self._ended[b]}:
            frames = self._tokens[b].shape[0]
            used[b] = self.decoder.used_samples(self.decoder.plan_windows([frames]), [frames])
        return [used[b][k] if b in used else whole for b, k, _, _ in group]

    def _add_window(self, b: int, wave: torch.Tensor) -> None:
        """Append the samples of clip b that window ``wave`` [L] makes final (all but its tail)."""
        length, overlap = wave.shape[0], self._overlap_samples
        previous = self._last_wave[b]
        if overlap == 0:
            final = wave
        elif previous is None:
            final = wave[: length - overlap]
        else:  # the pair cross-faded as overlap_add does; its second window's tail waits for the next one
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
    return isinstance(getattr(codec, "decoder", None), WindowDecoder)
