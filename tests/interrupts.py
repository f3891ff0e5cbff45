"""Helpers of the tests of interrupted runs: audio files to encode, a Ctrl-C injected into a call, and
comparisons of the files written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(path: Path, freq: float, seconds: float = 0.5, channels: int = 1) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave, -wave], 1) if channels == 2 else wave, 16000)
    return path


def same_audio(a: Path, b: Path) -> bool:
    """Equal 16-bit wavs up to one step: a batch of other clips moves the decoder's floats by ~1e-7."""
    x, y = sf.read(a, dtype="int16")[0], sf.read(b, dtype="int16")[0]
    return x.shape == y.shape and int(np.abs(x.astype(np.int32) - y).max()) <= 1


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def five_tones(folder: Path) -> Path:
    """clip0.wav .. clip4.wav: tones of 0.3 .. 0.7 s (other lengths, so batches are padded)."""
    for i, freq in enumerate((220, 330, 440, 550, 660)):
        tone(folder / f"clip{i}.wav", freq, seconds=0.3 + 0.1 * i)
    return folder


def interrupt_call(monkeypatch, module, name: str, n: int) -> None:
    """``module.name`` raises KeyboardInterrupt (as Ctrl-C would) once, when it is called for the (n + 1)-th
    time, after n complete calls; later calls go through."""
    real = getattr(module, name)
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(args)
        if len(calls) == n + 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
