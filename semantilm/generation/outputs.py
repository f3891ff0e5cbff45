"""What the audio generation entry points return, and the names their clips are saved under."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from plumbing.io import atomic_write, pad_stack, refuse_existing

__all__ = ["AudioGenerationOutput", "generation_names"]


def generation_names(
    texts: Sequence[str] | None = None, audio: Sequence[str | os.PathLike] | None = None, takes: int = 1
) -> list[str]:
    """A distinct file-name stem per generated clip, prompt by prompt, ``takes`` per prompt.

    Text prompts are ``text_00``, ``text_01``, ...; audio prompts ``<stem>_cont``, or
    ``audio_00_<stem>_cont``, ... when two prompts share a stem (``a/x.wav`` and ``b/x.wav``);
    with ``takes > 1`` each gets ``_0`` ... ``_{takes-1}``.
    """
    if (texts is None) == (audio is None):
        raise ValueError("give texts or audio, not both and not neither.")
    if texts is not None:
        bases = [f"text_{i:02d}" for i in range(len(texts))]
    else:
        stems = [Path(p).stem + "_cont" for p in audio]
        bases = stems if len(set(stems)) == len(stems) else [f"audio_{i:02d}_{s}" for i, s in enumerate(stems)]
    return bases if takes == 1 else [f"{base}_{k}" for base in bases for k in range(takes)]


@dataclass
class AudioGenerationOutput:
    """Generated audio and the tokens it was decoded from.

    audio:         FloatTensor[B, N] at ``sample_rate``, zero-padded after each clip's length.
    lengths:       LongTensor[B], valid samples per clip.
    sample_rate:   Hz.
    tokens:        LongTensor[B, T, 2] codec tokens (semantic, acoustic), 0 after each length.
    token_lengths: LongTensor[B], frames per clip.
    """

    audio: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int
    tokens: torch.Tensor
    token_lengths: torch.Tensor

    def unbatch(self) -> list[torch.Tensor]:
        """One FloatTensor[N_b] per clip."""
        return [a[: int(n)] for a, n in zip(self.audio, self.lengths, strict=True)]

    def save(
        self, out_dir: str | os.PathLike, names: Sequence[str] | None = None, *, overwrite: bool = False
    ) -> list[Path]:
        """Write each clip as a 16-bit wav ``out_dir/<name>.wav`` (default names ``clip_00``, ...); returns the paths.

        Every name is checked first: a repeated name is a ``ValueError`` and an existing file an
        ``OutputExistsError`` unless ``overwrite``, so a refused call writes nothing; each file is written
        atomically.
        """
        import soundfile as sf

        count = self.audio.shape[0]
        names = [f"clip_{i:02d}" for i in range(count)] if names is None else [str(n) for n in names]
        if len(names) != count:
            raise ValueError(f"names must give one name per clip ({count}), got {len(names)}.")
        odd = [n for n in names if n in ("", ".", "..") or Path(n).name != n]
        if odd:
            raise ValueError(f"names must be plain file names (no folders), got {odd}.")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"names must be distinct, {repeated} repeat: one clip would replace another.")
        paths = [Path(out_dir) / f"{name}.wav" for name in names]
        refuse_existing(paths, overwrite)
        for path, wave in zip(paths, self.unbatch()):
            data = wave.detach().float().clamp(-1, 1).cpu().numpy()
            atomic_write(path, lambda tmp, data=data: sf.write(tmp, data, self.sample_rate, subtype="PCM_16",
                                                               format="WAV"))
        return paths

    @classmethod
    def concat(cls, parts: Sequence[AudioGenerationOutput]) -> AudioGenerationOutput:
        """The outputs of consecutive batches as one batch (rows zero-padded to the widest part)."""
        if not parts:
            raise ValueError("concat needs at least one AudioGenerationOutput.")
        audio, _ = pad_stack([row for p in parts for row in p.audio])
        tokens, _ = pad_stack([row for p in parts for row in p.tokens])
        return cls(
            audio=audio,
            lengths=torch.cat([p.lengths for p in parts]),
            sample_rate=parts[0].sample_rate,
            tokens=tokens,
            token_lengths=torch.cat([p.token_lengths for p in parts]),
        )
