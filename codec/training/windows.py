"""Fixed-length training windows cut from a list of clips, deterministic per (seed, epoch, index).

Each epoch visits every clip once, in an order drawn from ``(seed, epoch)``, and takes one window
of ``window_samples`` from it at an offset drawn from ``(seed, epoch, clip)``. Clips shorter than
a window are zero-padded and their true length is returned with them. With ``partial`` > 0 that
share of windows is cut short (a length drawn uniformly from ``min_samples`` to the window) and
zero-padded the same way, so that a decoder also learns the last window of every clip, whose rows
past the clip's end are padding at inference. Nothing depends on a global RNG, so a resumed run
sees exactly the windows an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ClipWindows", "EpochWindows", "collate_windows"]


class ClipWindows:
    """Clips (1-D float tensors at the codec's rate) and the window length to cut from them.

    clips: a sequence, or ``(count, getter)`` where ``getter(i)`` loads clip ``i`` lazily.
    partial: share of windows cut to a random length below ``window_samples`` (0: none).
    """

    def __init__(self, clips: Sequence[torch.Tensor] | tuple[int, Callable[[int], torch.Tensor]],
                 window_samples: int, min_samples: int, seed: int = 0, partial: float = 0.0) -> None:
        if isinstance(clips, tuple) and len(clips) == 2 and callable(clips[1]):
            self._count, self._get = clips
        else:
            items = list(clips)
            self._count, self._get = len(items), items.__getitem__
        if self._count == 0:
            raise ValueError("the corpus has no clips.")
        if window_samples < min_samples:
            raise ValueError(f"window_samples={window_samples} is shorter than the minimum {min_samples}.")
        if not 0.0 <= partial <= 1.0:
            raise ValueError(f"partial={partial!r} must be a share between 0 and 1.")
        self.window_samples, self.min_samples, self.seed, self.partial = window_samples, min_samples, seed, partial

    def __len__(self) -> int:
        return self._count

    def order(self, epoch: int) -> list[int]:
        """Clip order of an epoch."""
        return np.random.default_rng([self.seed, epoch]).permutation(self._count).tolist()

    def window(self, epoch: int, clip: int) -> tuple[torch.Tensor, int]:
        """(FloatTensor[window_samples] zero-padded, valid samples) of ``clip`` in ``epoch``."""
        wave = torch.as_tensor(self._get(clip), dtype=torch.float32).reshape(-1)
        n, w = wave.numel(), self.window_samples
        if self.partial:  # its own stream, so that partial=0 keeps every other draw
            rng = np.random.default_rng([self.seed, epoch, clip, 1])
            if rng.random() < self.partial:
                keep = int(rng.integers(self.min_samples, w)) if w > self.min_samples else w
                if n > keep:
                    start = int(rng.integers(0, n - keep + 1))
                    wave, n = wave[start:start + keep], keep
        if n > w:
            start = int(np.random.default_rng([self.seed, epoch, clip]).integers(0, n - w + 1))
            return wave[start:start + w].clone(), w
        if n < self.min_samples:
            wave = torch.nn.functional.pad(wave, (0, self.min_samples - n))  # too short to frame: pad
            n = self.min_samples
        return torch.nn.functional.pad(wave, (0, w - n)), n


class EpochWindows(Dataset):
    """The windows of one epoch, in that epoch's order (a map-style dataset for a DataLoader)."""

    def __init__(self, windows: ClipWindows, epoch: int) -> None:
        self.windows, self.epoch = windows, epoch
        self._order = windows.order(epoch)

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.windows.window(self.epoch, self._order[i])


def collate_windows(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(waves FloatTensor[B, W], lengths LongTensor[B])."""
    return torch.stack([w for w, _ in items]), torch.tensor([n for _, n in items], dtype=torch.long)
