"""Versioned token files: one clip's tokens plus what is needed to decode them faithfully.

An ``.npz`` (no pickles) holding ``tokens`` int32 [T, 2] and a JSON ``meta`` string with
the format version, the codec variant, the token rate, the vocabulary sizes and the
original length and sample rate of the audio.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from codec.io import atomic_write

FORMAT = "semantilm-tokens"
VERSION = 1
SUFFIX = ".tokens.npz"


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

    def meta(self) -> dict:
        meta = asdict(self)
        meta.pop("tokens")
        return {"format": FORMAT, "version": VERSION, **meta}


def save_tokens(path: str | Path, record: TokenFile) -> Path:
    """Write atomically (temporary name, then rename); returns the path written."""
    path = Path(path)
    tokens = record.tokens
    if tokens.dim() != 2 or tokens.shape[-1] != 2:
        raise ValueError(f"tokens must be [T, 2], got {tuple(tokens.shape)}.")
    buffer = io.BytesIO()
    np.savez(buffer, tokens=tokens.cpu().numpy().astype(np.int32), meta=np.array(json.dumps(record.meta())))
    return atomic_write(path, buffer.getvalue())


def load_tokens(path: str | Path) -> TokenFile:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {str(path)!r} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            tokens = data["tokens"]
            meta = json.loads(str(data["meta"]))
    except Exception as err:
        raise ValueError(f"{str(path)!r} is not a readable token file ({type(err).__name__}: {err}).") from err
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a {FORMAT} file (format={meta.get('format')!r}).")
    if meta.get("version", 0) > VERSION:
        raise ValueError(
            f"{str(path)!r} has token-file version {meta['version']}; this semantilm reads up to {VERSION}. Upgrade."
        )
    fields = {k: meta[k] for k in TokenFile.__dataclass_fields__ if k in meta and k != "tokens"}
    return TokenFile(tokens=torch.from_numpy(tokens.astype(np.int64)), **fields)
