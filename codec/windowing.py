"""Windowing of long token sequences for the decoder, and cross-fading of window waveforms.

Both follow the official inference code exactly (``long_token_split_window`` and
``overlap_add_waveform``), including its quirk that window waveforms are laid end to end with
an overlap counted in samples of the *vocoder output* (163872 samples per window for the
official sizes, not 163840), so windows after the first drift by 32 samples each relative to
their tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def split_windows(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, stop) token ranges of the decoder windows of a sequence of ``num_frames`` frames.

    Windows of ``window`` frames start at 0, ``window - overlap``, ... while ``start + window <
    num_frames``; the remainder (1..window frames) is the last window.
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}.")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap={overlap} must be in [0, window={window}).")
    spans = []
    start = 0
    while start + window < num_frames:
        spans.append((start, start + window))
        start += window - overlap
    spans.append((start, num_frames))
    return spans


@dataclass
class WindowPlan:
    """Every decoder window of a batch of clips, in the decoder's one window order: window by window,
    each window index in clip order (window 0 of every clip, then window 1 of every clip that has
    one, ...). The sampler's noise is drawn in this order (see :mod:`codec.decode_stream`).

    clip:  the clip of each window.
    spans: (start, stop) token range of each window inside its clip.
    """

    clip: list[int]
    spans: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.clip)


def plan_windows(lengths: Sequence[int], window: int, overlap: int) -> WindowPlan:
    """The windows of clips of ``lengths`` token frames (:func:`split_windows` each), in the order of
    :class:`WindowPlan`."""
    per_clip = [split_windows(int(n), window, overlap) for n in lengths]
    clip, spans = [], []
    for k in range(max((len(s) for s in per_clip), default=0)):
        for b, mine in enumerate(per_clip):
            if k < len(mine):
                clip.append(b)
                spans.append(mine[k])
    return WindowPlan(clip, spans)


def overlap_add(windows: torch.Tensor, overlap: int) -> torch.Tensor:
    """Cross-fade ``windows`` [n, L] into one waveform [n * L - (n - 1) * overlap].

    Each later window's first ``overlap`` samples are multiplied by ``linspace(0, 1, overlap)``,
    the earlier window's last ``overlap`` samples by ``linspace(1, 0, overlap)``, and the two
    are summed (a linear cross-fade, as the official code does).
    """
    if windows.dim() != 2:
        raise ValueError(f"windows must be [n, L], got shape {tuple(windows.shape)}.")
    n, length = windows.shape
    if n == 1 or overlap == 0:
        return windows.reshape(-1)
    if not 0 < overlap <= length // 2:
        raise ValueError(f"overlap={overlap} must be in (0, L/2={length // 2}].")
    fade_in = torch.linspace(0, 1, overlap, dtype=torch.float64).to(windows)
    weights = torch.ones(n, length, dtype=windows.dtype, device=windows.device)
    weights[1:, :overlap] = fade_in
    weights[:-1, length - overlap :] = fade_in.flip(0)
    hop = length - overlap
    out = torch.zeros(n * length - (n - 1) * overlap, dtype=windows.dtype, device=windows.device)
    weighted = windows * weights
    for i in range(n):
        out[i * hop : i * hop + length] += weighted[i]
    return out


def used_samples(window_clip: list[int], clip_samples: list[int], window: int, overlap: int) -> list[int]:
    """Leading samples of each window waveform that survive :func:`overlap_add` and the trim of
    its clip to ``clip_samples[clip]`` samples (at least 1).

    window_clip: the clip of each window, each clip's windows in their order (other clips' windows
    may come between them, as in :class:`WindowPlan`); window: samples per
    window waveform; overlap: the cross-fade in samples.
    """
    hop = window - overlap
    seen: dict[int, int] = {}
    used = []
    for b in window_clip:
        r = seen.get(b, 0)
        seen[b] = r + 1
        used.append(max(1, min(window, clip_samples[b] - r * hop)))
    return used
