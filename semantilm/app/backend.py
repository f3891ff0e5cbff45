"""The app's one door into the library: models, generation streams, the codec, token files, metrics.

Every call from ``semantilm.app`` into ``semantilm`` and ``codec`` goes through this module, so that
a change of the library's signatures (settings objects for sampling and decoding) is a change here
only. Nothing here knows about Gradio: errors are ``AppInputError`` (the user's input) or the
library's own ``ValueError`` / ``TypeError``, which the pages show as messages.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codec.sampling import SAMPLERS

__all__ = ["AppInputError", "Backend", "Clip", "GenerationSettings", "SAMPLERS", "check_checkpoint", "read_audio"]


class AppInputError(ValueError):
    """Input from the page that cannot be used: the message says which input, what is wrong and what to do."""


@dataclass(frozen=True)
class GenerationSettings:
    """What the text-to-audio and continuation pages ask for (one clip per caption and take)."""

    seconds: float = 1.0
    guidance: float = 2.0
    temperature: float = 1.0
    top_k: int = 2  # 0: no limit
    sampler: str = "dpmsolver++"
    steps: int = 25
    seed: int = 0
    takes: int = 1


@dataclass
class Clip:
    """One finished clip: samples at ``sample_rate`` and its codec tokens LongTensor[T, 2]."""

    audio: np.ndarray
    sample_rate: int
    tokens: torch.Tensor


def check_checkpoint(folder: str | Path) -> Path:
    """``folder`` as a Path when it is a complete LM checkpoint folder, else an ``AppInputError`` that says why."""
    from semantilm.models.hub import check_checkpoint_folder

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise AppInputError(f"checkpoint {str(folder)!r} is not a folder; give the folder that `semantilm demo` "
                            "(its lm/ folder) or training wrote.")
    try:
        check_checkpoint_folder(path)
    except ValueError as err:
        raise AppInputError(f"checkpoint {str(folder)!r}: {err}") from None
    return path


def read_audio(path: str | Path, what: str = "audio") -> tuple[torch.Tensor, int]:
    """A mono waveform FloatTensor[N] and its rate from an uploaded file, or an ``AppInputError``."""
    from codec.audio import check_waveform, load_audio

    try:
        wave, rate = load_audio(path)
        check_waveform(wave, what)
    except (ValueError, TypeError, OSError) as err:
        reason = str(err.__cause__ or err).split("': ")[-1].rstrip(".")  # without the upload folder's path
        raise AppInputError(f"{what}: the file {Path(path).name!r} is not audio this app can read ({reason}); "
                            "give a wav, flac, ogg, mp3 or aiff file.") from None
    return wave, rate


class Backend:
    """The codec and the LM checkpoints of one app process, each loaded once.

    checkpoints: name -> checkpoint folder (checked with ``check_checkpoint``); the first loads now.
    codec:       a codec name for ``load_codec`` (``tiny``, a folder, a hub repo), or None for the one
                 the first checkpoint records. Every checkpoint must fit it.
    """

    def __init__(self, checkpoints: dict[str, Path], codec: str | None = None, device: str = "cpu"):
        if not checkpoints:
            raise AppInputError("no checkpoint given; run `semantilm demo` first or pass --checkpoint FOLDER.")
        self.checkpoints = dict(checkpoints)
        self.device = device
        self._models: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        first = next(iter(self.checkpoints))
        self.codec = self._load_codec(codec, self.checkpoints[first])
        for name, folder in self.checkpoints.items():
            self._check_fits(name, folder)
        self.model(first)

    # ----- loading ------------------------------------------------------------------------------
    def _load_codec(self, name: str | None, folder: Path) -> Any:
        from semantilm.codec_api import load_codec
        from semantilm.models.hub import load_codec_reference

        if name is not None:
            return load_codec(name, device=self.device, decoder=True)
        reference = load_codec_reference(folder)
        if reference is None:
            raise AppInputError(f"checkpoint {str(folder)!r} does not say which codec decodes it (no "
                                "semantilm_codec.json); pass --codec.")
        return reference.load(device=self.device, decoder=True)

    def _check_fits(self, name: str, folder: Path) -> None:
        from semantilm.tokens.layout import AudioTokenLayout

        try:
            AudioTokenLayout.from_pretrained(folder).check_codec(self.codec)
        except ValueError as err:
            raise AppInputError(f"checkpoint {name!r} does not fit the codec: {err}") from None

    def model(self, name: str) -> Any:
        """The loaded LM (``LoadedLM``) of checkpoint ``name``; loaded on first use, kept for the process."""
        from semantilm.models.lm import load_lm

        if name not in self.checkpoints:
            raise AppInputError(f"checkpoint {name!r} is not one this app was started with; choose one of "
                                f"{sorted(self.checkpoints)}.")
        with self._load_lock:
            if name not in self._models:
                folder = check_checkpoint(self.checkpoints[name])  # it may have changed since the start
                lm = load_lm(folder, codec=self.codec)
                if lm.tokenizer is None:
                    raise AppInputError(f"checkpoint {name!r} has no text tokenizer; save it with "
                                        "semantilm.save_lm(..., tokenizer=...).")
                lm.model.to(self.device).eval()
                self._models[name] = lm
            return self._models[name]

    # ----- facts the pages show -----------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    def bitrate(self) -> float:
        """Bits per second of the codec's two token streams."""
        from codec.eval import codec_bitrate

        return codec_bitrate(self.codec)

    def max_seconds(self, name: str, caption: str = "") -> float:
        """The longest clip checkpoint ``name`` can write after ``caption`` within its context."""
        lm = self.model(name)
        context = getattr(lm.model.config, "max_position_embeddings", None)
        if context is None:
            return math.inf
        prompt = len(lm.tokenizer.text_prompt(caption or None))
        frames = (int(context) - prompt - 1) // 2  # two ids per frame, then <|audio_end|>
        return max(frames, 0) / float(lm.layout.frame_rate)

    # ----- generation ---------------------------------------------------------------------------
    def text_stream(self, name: str, captions: list[str], settings: GenerationSettings) -> Any:
        """An ``AudioStream`` of the clips of every caption (``settings.takes`` each, take after take of
        caption 0 first); iterate it for chunks while the LM writes, ``close()`` it to stop."""
        from semantilm.generation.stream import generate_audio_stream

        lm = self.model(name)
        for caption in captions:
            most = self.max_seconds(name, caption)
            if settings.seconds > most + 1e-9:
                raise AppInputError(
                    f"seconds: {settings.seconds:g} s is beyond this model's context; it can write at most "
                    f"{math.floor(most * 100) / 100:g} s after the caption {caption!r}. Ask for fewer seconds.")
        sampling = self._sampling(settings, guidance_scale=settings.guidance, batch_size=len(captions))
        return generate_audio_stream(
            lm.model, lm.tokenizer, self.codec, captions, sampling=sampling,
            decode=page_decode_settings(settings.sampler, settings.steps),
            generator=torch.Generator().manual_seed(settings.seed), progress=False,
        )

    def continuation_stream(self, name: str, wave: torch.Tensor, rate: int, settings: GenerationSettings) -> Any:
        """An ``AudioStream`` that continues ``wave`` (FloatTensor[N] at ``rate``) by ``settings.seconds``."""
        from semantilm.generation.stream import continue_audio_stream

        lm = self.model(name)
        return continue_audio_stream(
            lm.model, lm.tokenizer, self.codec, [wave], rate, sampling=self._sampling(settings, batch_size=1),
            decode=page_decode_settings(settings.sampler, settings.steps),
            generator=torch.Generator().manual_seed(settings.seed),
            progress=False,
        )

    @staticmethod
    def _sampling(settings: GenerationSettings, **extra: Any) -> Any:
        from semantilm.generation.settings import SamplingSettings

        return SamplingSettings(seconds=settings.seconds, temperature=settings.temperature,
                                top_k=settings.top_k or None, seed=settings.seed,
                                num_return_sequences=settings.takes, **extra)

    @staticmethod
    def chunks(chunks: Iterator[Any]) -> Iterator[tuple[int, np.ndarray, int, torch.Tensor | None]]:
        """(clip index, new samples, sample rate, the clip's tokens on its last chunk else None) per chunk of a stream."""
        for chunk in chunks:
            yield chunk.index, chunk.audio.detach().cpu().float().numpy(), int(chunk.sample_rate), chunk.tokens

    # ----- the codec ----------------------------------------------------------------------------
    def encode(self, wave: torch.Tensor, rate: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens LongTensor[T, 2], the waveform at the codec's rate FloatTensor[N]) of one clip."""
        from codec.audio import resample

        with torch.inference_mode():
            out = self.codec.encode([wave.to(self.device)], rate)
        tokens = out.tokens[0, : int(out.lengths[0])].cpu()
        at_codec_rate = wave if rate == self.sample_rate else resample(wave, rate, self.sample_rate)
        return tokens, at_codec_rate

    def decode(self, tokens: torch.Tensor, sampler: str, steps: int, seed: int) -> np.ndarray:
        """The waveform of one clip's tokens LongTensor[T, 2], decoded with ``sampler`` / ``steps``."""
        settings = page_decode_settings(sampler, steps)
        with torch.inference_mode():
            out = self.codec.decode(tokens[None].to(self.device), torch.tensor([tokens.shape[0]]), settings,
                                    generator=torch.Generator().manual_seed(seed))
        return out.audio[0, : int(out.lengths[0])].float().cpu().numpy()

    def save_token_file(self, path: Path, tokens: torch.Tensor, source: str, num_samples: int | None = None) -> Path:
        """Write one clip's tokens as a token file (``.tokens.npz``) that ``semantilm decode`` reads.
        num_samples: the encoded audio's length; None for generated tokens (all their frames' samples)."""
        from codec.token_file import TokenFile, save_tokens

        codec = self.codec
        most = math.ceil(tokens.shape[0] * self.sample_rate / float(codec.frame_rate))
        samples = most if num_samples is None else min(max(int(num_samples), 1), most)
        record = TokenFile(tokens.cpu(), str(codec.variant), int(round(2 * float(codec.frame_rate))),
                           int(codec.semantic_vocab_size), int(codec.acoustic_vocab_size), samples,
                           self.sample_rate, source)
        return save_tokens(path, record)

    def load_token_file(self, path: str | Path) -> torch.Tensor:
        """The tokens LongTensor[T, 2] of a token file made for this app's codec, or an ``AppInputError``."""
        from codec.token_file import load_tokens

        try:
            record = load_tokens(path)
        except (ValueError, TypeError, OSError) as err:
            raise AppInputError(f"token file {Path(path).name!r} cannot be read: {err}") from None
        if record.codec_variant != str(self.codec.variant):
            raise AppInputError(f"token file {Path(path).name!r} was made by codec {record.codec_variant!r}, "
                                f"this app decodes with {self.codec.variant!r}; encode the audio here again.")
        return record.tokens

    @staticmethod
    def metrics(reference: np.ndarray, decoded: np.ndarray, sample_rate: int) -> dict[str, float]:
        """The codec's reconstruction scores of ``decoded`` against ``reference`` (trimmed to one length)."""
        from codec.eval import metrics as m

        n = min(len(reference), len(decoded))
        ref, est = torch.from_numpy(reference[:n]).float(), torch.from_numpy(decoded[:n]).float()
        scores = {"mel distance (lower is better)": float(m.mel_distance(ref, est, sample_rate)),
                  "multi-resolution STFT distance (lower is better)": float(m.multi_resolution_stft_distance(ref, est)),
                  "SI-SDR dB (higher is better)": float(m.si_sdr(ref, est))}
        if m.metric_unavailable("stoi") is None:
            scores["STOI (higher is better)"] = float(m.stoi(ref, est, sample_rate))
        scores["dominant frequency of the input, Hz"] = float(m.dominant_frequency(ref, sample_rate))
        scores["dominant frequency of the decoded audio, Hz"] = float(m.dominant_frequency(est, sample_rate))
        return {k: round(v, 4) for k, v in scores.items()}


def page_decode_settings(sampler: str, steps: int) -> Any:
    """``codec.DecodeSettings`` for the page's sampler and steps, or an ``AppInputError`` naming the bad one."""
    from codec.sampling import DecodeSettings

    try:
        return DecodeSettings(sampler=sampler, steps=int(steps))
    except (ValueError, TypeError) as err:
        raise AppInputError(f"sampler / steps: {err}") from None
