"""``semantilm generate``'s audio: the chunks of ``generate_audio_stream`` / ``continue_audio_stream``
written to one 16-bit wav per clip.

Each wav grows in a hidden file beside its final name (``.NAME.wav.<random>.partial``) whose header
is rewritten after every chunk, so the partial file is a valid wav of the audio so far (playable
while the LM still writes); the finished file is renamed to its name, so an interrupted run never
leaves a half file under it. With ``--stream`` chunks are written as they come and the time to the
first audio is printed; without, the same chunks are written once generation has finished, so
both give the same files.
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.generation.lm_speed import LMSpeed

__all__ = ["PartialWav", "generate_wavs"]


class PartialWav:
    """A mono 16-bit PCM wav written chunk by chunk; ``finish`` renames it to ``path``.

    Samples are clipped to [-1, 1] and scaled by 32767 with round-half-even (libsndfile's PCM_16).
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial")
        self.partial = Path(tmp)
        self.sample_rate = int(sample_rate)
        self.samples = 0
        self._file = os.fdopen(fd, "w+b")
        self._file.write(self._header())

    def write(self, audio: torch.Tensor) -> None:
        """Append FloatTensor[N] samples and update the header."""
        data = np.rint(audio.detach().float().clamp(-1, 1).cpu().numpy() * 32767).astype("<i2")
        self._file.seek(0, os.SEEK_END)
        self._file.write(data.tobytes())
        self.samples += data.shape[0]
        self._file.seek(0)
        self._file.write(self._header())
        self._file.flush()

    def finish(self) -> Path:
        """Close the file, give it a plain file's permissions and rename it to ``path``."""
        self._file.close()
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.partial, 0o666 & ~mask)
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        """Close and delete the partial file (the run failed)."""
        self._file.close()
        self.partial.unlink(missing_ok=True)

    def _header(self) -> bytes:
        data = 2 * self.samples
        fmt = struct.pack("<HHIIHH", 1, 1, self.sample_rate, 2 * self.sample_rate, 2, 16)  # PCM, mono, 16-bit
        return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + \
            struct.pack("<I", data)


def generate_wavs(
    args: argparse.Namespace, lm: Any, codec: Any, prompts: list[tuple[torch.Tensor, int]], paths: list[Path],
    settings: Any, speed: LMSpeed | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate the clips ``args`` ask for (``--text`` or ``--audio`` prompts, already read as
    ``prompts``) with the LM's ``speed`` settings, write clip i to ``paths[i]``; returns (tokens LongTensor[B, T, 2], frames LongTensor[B])."""
    from codec.audio import resample
    from plumbing.io import pad_stack
    from semantilm.cli.common import decode_generator
    from semantilm.generation.stream import continue_audio_stream, generate_audio_stream

    common = dict(seconds=args.seconds, do_sample=not args.greedy, temperature=args.temperature,
                  top_k=args.top_k or None, decode=settings, generator=decode_generator(args),
                  num_return_sequences=args.num_return_sequences, lm_speed=speed)
    start = time.perf_counter()
    if args.text:
        chunks = generate_audio_stream(lm.model, lm.tokenizer, codec, args.text, guidance_scale=args.guidance, **common)
    else:
        waves = [resample(wave, rate, codec.sample_rate) for wave, rate in prompts]
        chunks = continue_audio_stream(lm.model, lm.tokenizer, codec, waves, sample_rate=codec.sample_rate,
                                       return_prompt=True, **common)
    if not args.stream:
        chunks = list(chunks)
    writers: dict[int, PartialWav] = {}
    tokens: dict[int, torch.Tensor] = {}
    try:
        for chunk in chunks:
            if chunk.index not in writers:
                writers[chunk.index] = PartialWav(paths[chunk.index], chunk.sample_rate)
                if args.stream:
                    print(f"time to first audio of {paths[chunk.index].name}: {time.perf_counter() - start:.2f} s "
                          f"(the wav grows in {writers[chunk.index].partial})", flush=True)
            writers[chunk.index].write(chunk.audio)
            if chunk.final:
                writers.pop(chunk.index).finish()
                tokens[chunk.index] = chunk.tokens
    finally:
        for writer in writers.values():  # clips that did not finish: nothing is left behind
            writer.discard()
    if args.stream:
        print(f"all audio after {time.perf_counter() - start:.2f} s", flush=True)
    return pad_stack([tokens[i] for i in range(len(paths))])
