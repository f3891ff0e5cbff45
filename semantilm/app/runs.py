"""One generation run of the text-to-audio or continuation page: the stream's chunks as page updates,
then the clips as files (wav, token file, spectrogram).

Framework-free: ``run_stream`` yields ``Progress`` while the first clip plays and a ``Finished`` at the
end; the tabs turn them into Gradio updates. Files go to a fresh folder under the app's work folder.
"""

from __future__ import annotations

import io
import uuid
import wave as wavfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semantilm.app.backend import AppInputError, Backend, Clip, GenerationSettings
from semantilm.app.pictures import spectrogram_png

MAX_CLIPS = 8  # clip slots side by side on a page (captions x takes)
MAX_CAPTIONS = 4


@dataclass
class Progress:
    """New samples of the first clip (16-bit wav bytes) and a line about where the run is."""

    wav_bytes: bytes | None
    status: str


@dataclass
class ClipFiles:
    """What the page shows of one finished clip."""

    label: str
    wav: Path
    tokens: Path
    picture: Path
    seconds: float


@dataclass
class Finished:
    clips: list[ClipFiles] = field(default_factory=list)
    status: str = ""


def parse_captions(text: str | None) -> list[str]:
    """One caption per non-empty line of the page's caption box, or an ``AppInputError``."""
    captions = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not captions:
        raise AppInputError("caption: the caption is empty; type what the audio should be, e.g. "
                            "'a steady sine tone at 440 Hz' (one caption per line).")
    if len(captions) > MAX_CAPTIONS:
        raise AppInputError(f"caption: {len(captions)} captions; at most {MAX_CAPTIONS} per run (one per line).")
    return captions


def check_clip_count(prompts: int, settings: GenerationSettings) -> None:
    if prompts * settings.takes > MAX_CLIPS:
        raise AppInputError(f"takes: {prompts} prompt(s) x {settings.takes} takes = {prompts * settings.takes} "
                            f"clips; the page shows at most {MAX_CLIPS}. Ask for fewer takes or captions.")


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float samples in [-1, 1] as the bytes of a 16-bit wav file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wavfile.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def run_stream(backend: Backend, stream, labels: list[str], work_dir: Path, source: str) -> Iterator[Progress | Finished]:
    """Consume ``stream`` (an ``AudioStream``): ``Progress`` for each chunk of clip 0, then ``Finished``
    with every clip written to a new folder under ``work_dir``. The stream is closed when the caller
    stops early (Gradio closes the generator when the page's Stop is pressed)."""
    pieces: dict[int, list[np.ndarray]] = {}
    tokens: dict[int, object] = {}
    rate = backend.sample_rate
    try:
        for index, samples, rate, final_tokens in backend.chunks(stream):
            pieces.setdefault(index, []).append(samples)
            if final_tokens is not None:
                tokens[index] = final_tokens
            if index == 0 and samples.size:
                heard = sum(p.size for p in pieces[0]) / rate
                yield Progress(wav_bytes(samples, rate), f"generating: {heard:.2f} s of the first clip so far ...")
    finally:
        stream.close()
    clips = [Clip(np.concatenate(pieces[i]) if pieces.get(i) else np.zeros(0, np.float32), rate, tokens[i])
             for i in sorted(tokens)]
    yield write_clips(backend, clips, labels, work_dir, source)


def write_clips(backend: Backend, clips: list[Clip], labels: list[str], work_dir: Path, source: str) -> Finished:
    """Each clip as ``clip_N.wav``, ``clip_N.tokens.npz`` and ``clip_N.png`` in a new folder of ``work_dir``."""
    import soundfile as sf

    folder = work_dir / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    done = Finished()
    for i, (clip, label) in enumerate(zip(clips, labels, strict=True)):
        stem = folder / f"clip_{i + 1}"
        wav = stem.with_suffix(".wav")
        sf.write(wav, clip.audio, clip.sample_rate, subtype="PCM_16")
        token_file = backend.save_token_file(Path(f"{stem}.tokens.npz"), clip.tokens, f"{source}: {label}")
        picture = spectrogram_png(stem.with_suffix(".png"), clip.audio, clip.sample_rate, label)
        done.clips.append(ClipFiles(label, wav, token_file, picture, clip.audio.size / clip.sample_rate))
    lengths = ", ".join(f"{c.seconds:.2f} s" for c in done.clips)
    done.status = f"done: {len(done.clips)} clip(s) ({lengths}) at {clips[0].sample_rate if clips else 0} Hz."
    return done
