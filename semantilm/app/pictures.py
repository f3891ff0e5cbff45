"""The app's pictures: a clip's spectrogram and a clip's two token streams, as PNG files.

Drawn on matplotlib ``Figure`` objects of their own (no pyplot state), so that requests running in
Gradio's worker threads never share a figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("the app draws spectrograms with matplotlib: pip install 'semantilm[app]'") from None
    fig = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(fig)
    return fig


def spectrogram_png(path: Path, wave: np.ndarray, sample_rate: int, title: str) -> Path:
    """A log-magnitude spectrogram of ``wave`` (up to 4 kHz, where the demo's tones are) saved at ``path``."""
    fig = _figure(5.0, 2.6)
    ax = fig.add_subplot()
    samples = np.asarray(wave, dtype=np.float64)
    if samples.size < 512:  # specgram needs one whole window
        samples = np.pad(samples, (0, 512 - samples.size))
    ax.specgram(samples + 1e-9, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=-120)
    ax.set_ylim(0, min(4000, sample_rate / 2))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Hz")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def tokens_png(path: Path, tokens: torch.Tensor, frame_rate: float, vocab_sizes: tuple[int, int]) -> Path:
    """The ids of both token streams (LongTensor[T, 2]: semantic, acoustic) over time, one panel each."""
    fig = _figure(6.0, 3.4)
    ids = tokens.cpu().numpy()
    t = np.arange(ids.shape[0]) / float(frame_rate)
    for k, (name, size, colour) in enumerate(zip(("semantic", "acoustic"), vocab_sizes, ("tab:blue", "tab:orange"))):
        ax = fig.add_subplot(2, 1, k + 1)
        ax.step(t, ids[:, k], where="post", color=colour, lw=0.9)
        ax.scatter(t, ids[:, k], s=6, color=colour)
        ax.set_ylim(-0.5, size - 0.5)
        ax.set_ylabel(f"{name} id")
        ax.set_title(f"{name} tokens: {ids.shape[0]} frames, {len(np.unique(ids[:, k]))} distinct of {size}",
                     fontsize=9)
    fig.axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path)
    return path
