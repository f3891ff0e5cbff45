"""The sets of clips that ``eval-generation`` judges, read with the project's own readers:

* a folder of audio files with captions in the audiofolder convention (``metadata.csv`` /
  ``metadata.jsonl`` with ``file_name,caption``, or a ``.txt`` beside each file), read by
  :class:`semantilm.data.sources.FolderSource` and :func:`codec.audio.load_audio`;
* a token folder (``semantilm tokenize``) or token rows, decoded on the fly by the codec that made them;
* waveforms in memory (what the recipes' evaluation generates).

``SetFeatures`` holds what the judge models made of one such set.

Iterating a source yields a :class:`Clip` per readable clip and a :class:`ClipFailure` (name and
reason) for every other, so each input ends up in the results or in the failure list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plumbing.config_file import ConfigError

__all__ = ["MIN_SECONDS", "Clip", "ClipFailure", "ClipSource", "AudioFolderClips", "TokenRowClips",
           "WaveformClips", "TokenDecoding", "SetFeatures", "open_clips"]

MIN_SECONDS = 0.1  # shorter clips cannot be judged (the taggers' 25 ms fbank frames need a few to mean anything)


@dataclass
class Clip:
    """One mono clip: name (file path relative to its folder, or token row id), caption (None: none), audio."""

    name: str
    caption: str | None
    wave: torch.Tensor
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.wave.numel() / self.sample_rate


@dataclass
class ClipFailure:
    """A clip that could not be judged, and why."""

    name: str
    reason: str


def _caption(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def checked_clip(name: str, caption: Any, wave: torch.Tensor, sample_rate: int) -> Clip | ClipFailure:
    """A :class:`Clip`, or a failure for a clip that is empty, not finite or shorter than :data:`MIN_SECONDS`."""
    from codec.audio import check_waveform

    try:
        check_waveform(wave, f"clip {name!r}")
    except (TypeError, ValueError) as err:
        return ClipFailure(name, str(err))
    if wave.numel() < MIN_SECONDS * sample_rate:
        return ClipFailure(name, f"clip {name!r} lasts {wave.numel() / sample_rate:.3f} s; the judge models need at "
                                 f"least {MIN_SECONDS} s")
    return Clip(name, _caption(caption), wave.float(), int(sample_rate))


class ClipSource:
    """A set of clips: ``description`` (for the report) and ``len``; iterating yields clips and failures."""

    description: str = ""

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Clip | ClipFailure]:
        raise NotImplementedError


class AudioFolderClips(ClipSource):
    """Audio files of a folder tree with their audiofolder captions, as ``semantilm tokenize`` reads them:
    every file that looks like audio and every file a metadata file lists; one that is missing, or whose
    caption file cannot be read, is a failure."""

    def __init__(self, folder: str | os.PathLike):
        import warnings

        from codec.audio import AudioWarning
        from semantilm.data.sources import FolderSource

        self.folder = Path(folder)
        with warnings.catch_warnings():  # its warning speaks of tokenising; said below in this command's terms
            warnings.simplefilter("ignore", AudioWarning)
            source = FolderSource(self.folder, shard_size=1 << 30, max_examples=None)
        self.items = source.shard(0)
        uncaptioned = getattr(source, "not_in_metadata", [])
        if uncaptioned:
            examples = ", ".join(repr(i) for i in uncaptioned[:3])
            warnings.warn(f"{len(uncaptioned)} of the {len(self.items)} audio files of {str(self.folder)!r} are in "
                          f"no metadata file (e.g. {examples}): they are judged without a caption (no CLAP score, "
                          "no KL pair).", AudioWarning, stacklevel=2)
        self.description = f"audio folder {str(self.folder)!r}"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Clip | ClipFailure]:
        from codec.audio import load_audio

        for item in self.items:
            if item.get("error"):
                yield ClipFailure(item["id"], item["error"])
                continue
            try:
                wave, rate = load_audio(item["audio"])
            except (OSError, ValueError) as err:
                yield ClipFailure(item["id"], str(err))
                continue
            yield checked_clip(item["id"], item["meta"].get("caption"), wave, rate)


class WaveformClips(ClipSource):
    """Clips in memory: one name, caption and FloatTensor[N] each, at one sample rate."""

    def __init__(self, names: Sequence[str], captions: Sequence[str | None], waves: Sequence[torch.Tensor],
                 sample_rate: int, description: str = "generated clips"):
        if not len(names) == len(captions) == len(waves):
            raise ValueError(f"got {len(names)} names, {len(captions)} captions and {len(waves)} waveforms; "
                             "pass one of each per clip.")
        self.rows = list(zip(names, captions, waves))
        self.sample_rate = int(sample_rate)
        self.description = description

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Clip | ClipFailure]:
        for name, caption, wave in self.rows:
            yield checked_clip(str(name), caption, wave, self.sample_rate)


@dataclass
class TokenDecoding:
    """How token rows become audio.

    codec:    a loaded codec, a name for ``semantilm.codec_api.load_codec`` (with ``token_rate`` / ``vocab``;
              None: the codec's own, official 100 / 16384), or None: the codec the token folder's manifest names.
    decode:   ``codec.DecodeSettings`` of the diffusion decoder (None: its defaults); seed: its noise
              (None: unseeded); batch_size: rows per decoder call.
    """

    codec: Any = None
    token_rate: int | None = None
    vocab: int | None = None
    device: str = "cpu"
    cache_dir: str | None = None
    decode: Any = None
    decoder_dtype: str | None = None
    seed: int | None = 0
    batch_size: int = 8


class TokenRowClips(ClipSource):
    """Token rows (``semantic_ids``, ``acoustic_ids``, ``num_frames``, optional ``caption`` / ``id`` /
    ``duration``) decoded batch by batch by ``codec``; each clip is cut to its recorded duration."""

    def __init__(self, rows: Any, codec: Any, decoding: TokenDecoding, description: str):
        self.rows, self.codec, self.decoding, self.description = rows, codec, decoding, description

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Clip | ClipFailure]:
        from plumbing.io import pad_stack

        d = self.decoding
        generator = None if d.seed is None else torch.Generator(d.device).manual_seed(d.seed)
        rate = int(self.codec.sample_rate)
        for start in range(0, len(self.rows), d.batch_size):
            block = self.rows[start : start + d.batch_size]
            count = len(block["semantic_ids"])
            names = [str(v) for v in block.get("id", [f"row {start + i}" for i in range(count)])]
            captions = block.get("caption", [None] * count)
            tokens, _ = pad_stack([torch.tensor([s, a], dtype=torch.long).T
                                   for s, a in zip(block["semantic_ids"], block["acoustic_ids"])])
            out = self.codec.decode(tokens.to(d.device), torch.as_tensor(block["num_frames"]), settings=d.decode,
                                    generator=generator)
            durations = block.get("duration", [None] * count)
            for i in range(count):
                length = int(out.lengths[i])
                if durations[i] is not None:
                    length = min(length, int(round(float(durations[i]) * rate)))
                yield checked_clip(names[i], captions[i], out.audio[i, :length].float().cpu(), rate)


def token_folder_codec(folder: Path, decoding: TokenDecoding) -> Any:
    """The codec that decodes ``folder``'s tokens: ``decoding.codec``, or the one its manifest names;
    a ``ConfigError`` when it is not the codec that made them."""
    from codec.checkpoints import codec_for_variant, official_selectors
    from semantilm.codec_api import load_codec
    from semantilm.data.token_dataset import token_dataset_info

    info = (token_dataset_info(folder) or {}).get("codec") or {}
    variant = info.get("variant")
    codec = decoding.codec
    if codec is None or isinstance(codec, str):
        if codec is not None:
            name, rate, vocab = codec, decoding.token_rate, decoding.vocab
        elif info.get("source"):
            name, rate, vocab = info["source"]["name"], info["source"]["token_rate"], info["source"]["vocab"]
            rate, vocab = official_selectors(name, rate, vocab)  # recorded beside tiny / folders: not a choice
        elif variant is not None and (found := codec_for_variant(variant)) is not None:
            name, rate, vocab = found
        else:
            raise ConfigError(f"the token folder {str(folder)!r} does not say where its codec ({variant!r}) comes "
                              "from; pass the codec that made it (--codec).")
        codec = load_codec(name, rate, vocab, decoding.device, decoding.cache_dir, decoder=True,
                           decoder_dtype=decoding.decoder_dtype)
    if variant is not None and str(codec.variant) != variant:
        raise ConfigError(f"the token folder {str(folder)!r} holds tokens of codec {variant!r}, but the codec given "
                          f"is {codec.variant!r}; pass the codec that made them (--codec).")
    return codec


def open_clips(path: str | os.PathLike, decoding: TokenDecoding | None = None, what: str = "clips") -> ClipSource:
    """The clips of a folder of audio files or of a token folder (decoded with ``decoding``).

    what: how errors call the input (``"GENERATED"``, ``"--reference"``). A missing path is a
    ``FileNotFoundError``; a folder that holds neither a ``ValueError``.
    """
    from codec.data import AUDIO_SUFFIXES, audio_like_files
    from semantilm.data.folder_metadata import METADATA_FILES
    from semantilm.data.token_dataset import is_token_folder, load_token_dataset

    folder = Path(path).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist.")
    if is_token_folder(folder):
        decoding = decoding or TokenDecoding()
        codec = token_folder_codec(folder, decoding)
        return TokenRowClips(load_token_dataset(folder), codec, decoding, f"token folder {str(folder)!r}")
    if folder.is_dir() and (audio_like_files(folder) or any(next(folder.rglob(n), None) for n in METADATA_FILES)):
        return AudioFolderClips(folder)
    raise ValueError(f"{what} {str(path)!r} is neither a folder of audio files ({', '.join(AUDIO_SUFFIXES)}) nor a "
                     "token folder (semantilm tokenize); pass one of those.")


@dataclass
class SetFeatures:
    """What the judge models made of one set of clips: per readable clip its name, caption and length;
    per model role (``"clap"``, ``"fad"``, ``"tagger"``) its rows, batch by batch (``rows(role)`` joins
    them; None when that model did not run); and the clips that could not be judged."""

    names: list[str] = field(default_factory=list)
    captions: list[str | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)
    failures: list[ClipFailure] = field(default_factory=list)

    def rows(self, role: str) -> np.ndarray | None:
        found = self.features.get(role)
        return np.concatenate(found) if found else None
