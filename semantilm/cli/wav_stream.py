"""``semantilm generate``'s audio: ``generate_audio`` / ``continue_audio``, or with ``--stream`` the chunks
of their streaming twins, written to one 16-bit wav per clip.

Each wav grows in a hidden file beside its final name (``.NAME.wav.<random>.partial``) whose header
is rewritten after every chunk, so the partial file is a valid wav of the audio so far (playable
while the LM still writes); the finished file is renamed to its name, so an interrupted run never
leaves a half file under it. With ``--stream`` chunks are written as they come and the time to the
first audio is printed; without, the LM runs to the end and one ``codec.decode`` of every clip gives
the samples (the same waveforms: the stream decodes the same windows with the same draws).
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
    from semantilm.generation.settings import SamplingSettings

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
    args: argparse.Namespace, lm: Any, codec: Any, prompts: list[tuple[torch.Tensor, int]], paths: list[Path], *,
    settings: Any, speed: LMSpeed | None, sampling: SamplingSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate the clips ``args`` ask for (``--text`` or ``--audio`` prompts, already read as
    ``prompts``) with the LM's ``sampling`` and ``speed`` settings and the decoder's ``settings``, and
    write clip i to ``paths[i]``: streamed with ``--stream``, else after one decode of every clip.
    Returns (tokens LongTensor[B, T, 2], frames LongTensor[B])."""
    from codec.audio import resample
    from semantilm.cli.common import decode_generator
    from semantilm.generation.generate import continue_audio, generate_audio
    from semantilm.generation.stream import continue_audio_stream, generate_audio_stream

    common = dict(sampling=sampling, decode=settings, generator=decode_generator(args), lm_speed=speed)
    model, tokenizer = lm.model, lm.tokenizer
    waves = [resample(wave, rate, codec.sample_rate) for wave, rate in prompts]
    if not args.stream:
        if args.text:
            out = generate_audio(model, tokenizer, codec, args.text, **common)
        else:
            out = continue_audio(model, tokenizer, codec, waves, codec.sample_rate, **common)
        for path, wave in zip(paths, out.unbatch(), strict=True):
            writer = PartialWav(path, out.sample_rate)
            writer.write(wave)
            writer.finish()
        return out.tokens, out.token_lengths
    if args.text:
        chunks = generate_audio_stream(model, tokenizer, codec, args.text, **common)
    else:
        chunks = continue_audio_stream(model, tokenizer, codec, waves, codec.sample_rate, **common)
    return _write_stream(chunks, paths)


def _write_stream(chunks: Any, paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the chunks of a stream as they come, printing the time to each clip's first audio."""
    from plumbing.io import pad_stack

    start = time.perf_counter()
    writers: dict[int, PartialWav] = {}
    tokens: dict[int, torch.Tensor] = {}
    try:
        for chunk in chunks:
            if chunk.index not in writers:
                writers[chunk.index] = PartialWav(paths[chunk.index], chunk.sample_rate)
                print(f"time to first audio of {paths[chunk.index].name}: {time.perf_counter() - start:.2f} s "
                      f"(the wav grows in {writers[chunk.index].partial})", flush=True)
            writers[chunk.index].write(chunk.audio)
            if chunk.final:
                writers.pop(chunk.index).finish()
                tokens[chunk.index] = chunk.tokens
    finally:
        for writer in writers.values():  # clips that did not finish: nothing is left behind
            writer.discard()
    print(f"all audio after {time.perf_counter() - start:.2f} s", flush=True)
    return pad_stack([tokens[i] for i in range(len(paths))])
