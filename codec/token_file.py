"""Versioned token files: one clip's tokens plus what is needed to decode them faithfully.

An ``.npz`` (no pickles) holding ``tokens`` int32 [T, 2] and a JSON ``meta`` string with
the format version, the codec variant, the token rate, the vocabulary sizes, the
original length and sample rate of the audio, its path and how its channels were mixed.

:meth:`TokenFile.validate` is the one check of a record, run by :func:`save_tokens` before
anything is written and by :func:`load_tokens` on what was read: integer ids inside the recorded
vocabularies, shape ``[T, 2]`` with T >= 1, positive rates and sizes, and a ``num_samples`` that the
T frames can hold (the encoder pads a clip by less than one 0.16 s patch and one frame).
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plumbing.io import atomic_write

FORMAT = "semantilm-tokens"
VERSION = 1
SUFFIX = ".tokens.npz"
SAMPLE_RATE = 16000  # ``num_samples`` counts samples of the codec's 16 kHz audio
MONO_RULES = ("", "first", "mean")  # recorded channel rule ("": not recorded, files of older versions)
PAD_SECONDS = 0.16  # the encoder rounds a clip up to a multiple of this, adding at most one of it

__all__ = ["TokenFile", "save_tokens", "load_tokens", "check_token_array", "FORMAT", "VERSION", "SUFFIX"]


def check_token_array(tokens: Any, name: str = "tokens", vocab_sizes: tuple[int, int] | None = None) -> torch.Tensor:
    """``tokens`` as a LongTensor[T, 2] ([:, 0] semantic, [:, 1] acoustic ids), or a ``ValueError`` /
    ``TypeError`` naming ``name``, its shape or dtype and what is expected; ``vocab_sizes``: (semantic,
    acoustic) sizes the ids must lie under."""
    if isinstance(tokens, np.ndarray):
        tokens = torch.from_numpy(np.array(tokens))
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be an integer tensor [T, 2], got {type(tokens).__name__}.")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer token ids, got dtype {tokens.dtype}; ids are never fractional: "
            "these are not codec tokens (or were converted to float on the way)."
        )
    if tokens.dim() != 2 or tokens.shape[1] != 2:
        hint = " (a batch [B, T, 2] is saved one clip per file)" if tokens.dim() == 3 else ""
        raise ValueError(
            f"{name} must be [T, 2] (T frames of semantic, acoustic ids), got shape {tuple(tokens.shape)}{hint}."
        )
    if tokens.shape[0] == 0:
        raise ValueError(f"{name} has no frames (shape {tuple(tokens.shape)}); at least one frame is needed to decode.")
    tokens = tokens.long()
    for k, (stream, size) in enumerate(zip(("semantic", "acoustic"), vocab_sizes or ())):
        ids = tokens[:, k]
        if int(ids.min()) < 0 or int(ids.max()) >= size:
            raise ValueError(
                f"{name} has {stream} ids in [{int(ids.min())}, {int(ids.max())}], outside [0, {size}) of its "
                "vocabulary: the ids come from another codec or were damaged."
            )
    return tokens


def _positive_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}.")
    return int(value)


@dataclass
class TokenFile:
    """tokens: LongTensor[T, 2] ([:, 0] semantic, [:, 1] acoustic); the rest describes them."""

    tokens: torch.Tensor
    codec_variant: str
    token_rate: int
    semantic_vocab_size: int
    acoustic_vocab_size: int
    num_samples: int  # of the 16 kHz audio that was encoded
    source_sample_rate: int
    source: str = ""
    mono: str = ""  # how a multi-channel source was mixed: "first" / "mean" ("" when not recorded)

    def meta(self) -> dict:
        meta = asdict(self)
        meta.pop("tokens")
        return {"format": FORMAT, "version": VERSION, **meta}

    def validate(self, where: str = "token record") -> TokenFile:
        """This record with its tokens as a LongTensor, or a ``ValueError`` / ``TypeError`` that starts
        with ``where`` (the file) and names the field and the problem."""
        if not isinstance(self.codec_variant, str) or not self.codec_variant:
            raise ValueError(f"{where}: codec_variant must be a non-empty str, got {self.codec_variant!r}.")
        if self.mono not in MONO_RULES:
            raise ValueError(f"{where}: mono must be one of {MONO_RULES}, got {self.mono!r}.")
        for name in ("token_rate", "semantic_vocab_size", "acoustic_vocab_size", "num_samples", "source_sample_rate"):
            _positive_int(getattr(self, name), name, where)
        self.tokens = check_token_array(
            self.tokens, f"{where}: tokens", (self.semantic_vocab_size, self.acoustic_vocab_size)
        )
        frames = self.tokens.shape[0]
        frame_rate = self.token_rate / 2
        most = math.ceil(frames * SAMPLE_RATE / frame_rate)
        least = most - round((PAD_SECONDS + 1 / frame_rate) * SAMPLE_RATE)
        if not least <= self.num_samples <= most:
            raise ValueError(
                f"{where}: num_samples={self.num_samples} does not fit {frames} frames at {self.token_rate} tokens/s "
                f"(they decode to {most} samples at {SAMPLE_RATE} Hz, so the audio had between {max(least, 1)} and "
                f"{most}); the file was not written by this codec or was altered."
            )
        return self


def save_tokens(path: str | Path, record: TokenFile) -> Path:
    """Check ``record`` (:meth:`TokenFile.validate`), then write it atomically (temporary name, then
    rename); returns the path written. A bad record writes nothing."""
    if not isinstance(record, TokenFile) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"save_tokens(path, record) takes the file first and a TokenFile second, got "
                        f"{type(path).__name__} and {type(record).__name__}.")
    path = Path(path)
    record.validate(f"token record for {str(path)!r}")
    buffer = io.BytesIO()
    np.savez(buffer, tokens=record.tokens.cpu().numpy().astype(np.int32), meta=np.array(json.dumps(record.meta())))
    return atomic_write(path, buffer.getvalue())


def load_tokens(path: str | Path) -> TokenFile:
    """Read and check a token file; a ``ValueError`` naming the file says what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {str(path)!r} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            tokens = data["tokens"]
            meta = json.loads(str(data["meta"]))
    except Exception as err:
        raise ValueError(f"{str(path)!r} is not a readable token file ({type(err).__name__}: {err}).") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{str(path)!r} is not a {FORMAT} file (format={found!r}).")
    version = meta.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(
            f"{str(path)!r} has token-file version {version!r}; this semantilm reads up to {VERSION}. Upgrade."
        )
    required = [k for k in TokenFile.__dataclass_fields__ if k not in ("tokens", "source", "mono")]
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(f"token file {str(path)!r} lacks {missing} in its meta data; it is damaged: encode it again.")
    if tokens.dtype.kind not in "iu":
        raise ValueError(
            f"token file {str(path)!r} holds {tokens.dtype} tokens; token ids are integers: the file was not "
            "written by save_tokens or was altered. Encode the audio again."
        )
    fields = {k: meta[k] for k in TokenFile.__dataclass_fields__ if k in meta and k != "tokens"}
    record = TokenFile(tokens=torch.from_numpy(tokens.astype(np.int64)), **fields)
    return record.validate(f"token file {str(path)!r}")
