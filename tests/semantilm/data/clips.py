"""Small audio corpora on disk for the tokenisation tests (short noise clips at 16 kHz, a few broken)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
BROKEN = {  # relative path -> the start of its failure reason
    "broken/zero_bytes.wav": "unreadable",
    "broken/not_audio.wav": "unreadable",
    "broken/nan.wav": "non-finite",
    "broken/empty.wav": "empty",
    "broken/short.wav": "too short",
}


def clip(seed: int, seconds: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def make_folder(root: Path, n: int = 200, seconds: float = 0.3) -> Path:
    """``n`` good clips in sub-folders a/ and b/ (some stems in both), the broken ones of ``BROKEN``,
    and a ``metadata.csv`` giving some clips a caption and a speaker."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = "a" if i % 2 == 0 else "b"
        stem = f"clip{i // 2:03d}" if i < 20 else f"clip{i:03d}"  # the first ten stems exist in a/ and b/
        path = root / sub / f"{stem}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, clip(i, seconds), RATE, subtype="PCM_16")
    broken = root / "broken"
    broken.mkdir()
    (broken / "zero_bytes.wav").write_bytes(b"")
    (broken / "not_audio.wav").write_text("this is not audio\n")
    nan = clip(999, seconds)
    nan[10] = np.nan
    sf.write(broken / "nan.wav", nan, RATE, subtype="FLOAT")
    sf.write(broken / "empty.wav", np.zeros(0, np.float32), RATE, subtype="PCM_16")
    sf.write(broken / "short.wav", clip(998, 0.01), RATE, subtype="PCM_16")
    lines = ["file_name,caption,speaker"] + [f"a/clip{i:03d}.wav,noise number {i},spk{i % 3}" for i in range(20, 40, 2)]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def good_ids(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav") if p.parent.name != "broken")
