"""Where audio tokens live in the LM vocabulary, and in which order they are written.

This is the only place where vocabulary offsets are defined. The LM vocabulary is::

    [0, text_vocab_size)                       text ids (the text tokenizer's own range)
    [text_vocab_size, S)                       special tokens: <|audio_start|>, <|audio_end|>, <|pad|>, ...
    [S, S + semantic_vocab_size)               semantic ids          S = semantic_offset
    [A, A + acoustic_vocab_size)               acoustic ids          A = acoustic_offset = S + V_s

Two patterns turn codec tokens ``LongTensor[B, T, 2]`` into one LM id stream:

* ``"interleave"`` (default): one frame after another, ``s_0 a_0 s_1 a_1 ...``; a frame boundary
  is every even position of the audio span.
* ``"semantic_first"``: all semantic ids of the clip, then all its acoustic ids,
  ``s_0 ... s_{T-1} a_0 ... a_{T-1}``. The two id ranges are disjoint, so the first acoustic id
  marks the switch and the clip ends once there are as many acoustic as semantic ids.

The layout is saved as ``semantilm_config.json`` beside every LM checkpoint, together with the
codec variant, so that a checkpoint always knows how to decode what it generates.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from semantilm.codec_api import AudioCodec

__all__ = ["AudioTokenLayout", "LayoutNotFoundError", "LAYOUT_FILE", "PATTERNS", "AUDIO_START", "AUDIO_END", "PAD"]

LAYOUT_FILE = "semantilm_config.json"
FORMAT_NAME = "semantilm-token-layout"
FORMAT_VERSION = 1
PATTERNS = ("interleave", "semantic_first")
AUDIO_START = "<|audio_start|>"
AUDIO_END = "<|audio_end|>"
PAD = "<|pad|>"
REQUIRED_SPECIALS = (AUDIO_START, AUDIO_END, PAD)


class LayoutNotFoundError(FileNotFoundError, ValueError):
    """A directory that should hold an LM checkpoint has no ``semantilm_config.json``."""


@dataclass
class AudioTokenLayout:
    """Id ranges of text, special, semantic and acoustic tokens in one LM vocabulary.

    text_vocab_size:     ids below this belong to the text tokenizer (for an extended pretrained
                         LM: its embedding rows, which may exceed ``len(tokenizer)``).
    semantic_vocab_size: real range of the codec's semantic ids (rows of its centroid table).
    acoustic_vocab_size: real range of the codec's acoustic ids (8192 for SemantiCodec).
    special_tokens:      names of the special tokens, in id order, starting at ``text_vocab_size``;
                         must contain ``<|audio_start|>``, ``<|audio_end|>`` and ``<|pad|>``.
    pattern:             ``"interleave"`` or ``"semantic_first"`` (see the module docstring).
    frame_rate:          codec token frames per second (two LM tokens per frame).
    sample_rate:         codec sample rate in Hz.
    codec_variant:       the codec that produced the tokens (checked by ``check_codec``).
    codec_config:        optional JSON-serialisable codec configuration, saved for reference.
    """

    text_vocab_size: int
    semantic_vocab_size: int
    acoustic_vocab_size: int = 8192
    special_tokens: tuple[str, ...] = REQUIRED_SPECIALS
    pattern: str = "interleave"
    frame_rate: float = 50.0
    sample_rate: int = 16000
    codec_variant: str | None = None
    codec_config: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("text_vocab_size", "semantic_vocab_size", "acoustic_vocab_size", "sample_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}.")
        if isinstance(self.frame_rate, bool) or not isinstance(self.frame_rate, (int, float)):
            raise TypeError(f"frame_rate must be a number, got {self.frame_rate!r}.")
        if not (self.frame_rate > 0 and math.isfinite(self.frame_rate)):
            raise ValueError(f"frame_rate must be positive and finite, got {self.frame_rate}.")
        self.frame_rate = float(self.frame_rate)
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern={self.pattern!r} is not supported; use one of {PATTERNS}.")
        self.special_tokens = tuple(self.special_tokens)
        if not all(isinstance(s, str) and s for s in self.special_tokens):
            raise TypeError(f"special_tokens must be non-empty strings, got {self.special_tokens!r}.")
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError(f"special_tokens has duplicates: {self.special_tokens!r}.")
        missing = [s for s in REQUIRED_SPECIALS if s not in self.special_tokens]
        if missing:
            raise ValueError(f"special_tokens={self.special_tokens!r} lacks the required {missing}.")
        if self.codec_config is not None:
            try:
                json.dumps(self.codec_config)
            except (TypeError, ValueError) as err:
                raise TypeError(f"codec_config must be JSON-serialisable: {err}") from None

    # ----- construction ----------------------------------------------------------------
    @classmethod
    def for_codec(
        cls,
        codec: AudioCodec,
        text_vocab_size: int,
        pattern: str = "interleave",
        special_tokens: tuple[str, ...] = REQUIRED_SPECIALS,
    ) -> AudioTokenLayout:
        """The layout for ``codec``'s tokens appended to a text vocabulary of ``text_vocab_size`` ids."""
        from semantilm.codec_api import check_codec, codec_description

        check_codec(codec, methods=())
        info = codec_description(codec)
        return cls(
            text_vocab_size=text_vocab_size,
            semantic_vocab_size=info["semantic_vocab_size"],
            acoustic_vocab_size=info["acoustic_vocab_size"],
            special_tokens=special_tokens,
            pattern=pattern,
            frame_rate=info["frame_rate"],
            sample_rate=info["sample_rate"],
            codec_variant=info["variant"],
            codec_config=info.get("config"),
        )

    # ----- id ranges (defined here and nowhere else) -----------------------------------
    @property
    def special_offset(self) -> int:
        return self.text_vocab_size

    @property
    def semantic_offset(self) -> int:
        """S: LM id of semantic token 0."""
        return self.text_vocab_size + len(self.special_tokens)

    @property
    def acoustic_offset(self) -> int:
        """A = S + V_s: LM id of acoustic token 0."""
        return self.semantic_offset + self.semantic_vocab_size

    @property
    def vocab_size(self) -> int:
        """Rows of the LM's embedding table and output head."""
        return self.acoustic_offset + self.acoustic_vocab_size

    @property
    def num_new_tokens(self) -> int:
        """Ids added to the text vocabulary (specials + semantic + acoustic)."""
        return self.vocab_size - self.text_vocab_size

    def new_token_ids(self) -> list[int]:
        """The ids ``[text_vocab_size, vocab_size)`` that an extended pretrained LM must learn."""
        return list(range(self.text_vocab_size, self.vocab_size))

    def special_id(self, name: str) -> int:
        """LM id of the special token ``name`` (e.g. ``"<|audio_start|>"``)."""
        try:
            return self.special_offset + self.special_tokens.index(name)
        except ValueError:
            raise ValueError(f"special token {name!r} is not in this layout; it has {self.special_tokens}.") from None

    @property
    def audio_start_id(self) -> int:
        return self.special_id(AUDIO_START)

    @property
    def audio_end_id(self) -> int:
        return self.special_id(AUDIO_END)

    @property
    def pad_id(self) -> int:
        return self.special_id(PAD)

    @property
    def tokens_per_second(self) -> float:
        """LM tokens per second of audio (two per frame)."""
        return 2 * self.frame_rate

    def frames_for_seconds(self, seconds: float) -> int:
        """Whole token frames that cover ``seconds`` of audio (at least one)."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be a positive finite number, got {seconds!r}.")
        return max(1, math.ceil(seconds * self.frame_rate - 1e-9))

    # ----- classification of LM ids (vectorised, any shape) ----------------------------
    def is_semantic(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.semantic_offset) & (ids < self.acoustic_offset)

    def is_acoustic(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.acoustic_offset) & (ids < self.vocab_size)

    def is_audio(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.semantic_offset) & (ids < self.vocab_size)

    # ----- codec tokens <-> LM ids -----------------------------------------------------
    def validate_tokens(self, tokens: torch.Tensor, argument: str = "tokens") -> None:
        """Check codec tokens ``LongTensor[..., T, 2]`` against the two vocabulary sizes."""
        import torch

        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"{argument} must be a torch.Tensor, got {type(tokens).__name__}.")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise TypeError(f"{argument} must hold integer ids, got dtype {tokens.dtype}.")
        if tokens.ndim not in (2, 3) or tokens.shape[-1] != 2:
            raise ValueError(
                f"{argument} must have shape [T, 2] or [B, T, 2] (semantic, acoustic), got {tuple(tokens.shape)}."
            )
        for k, (name, size) in enumerate((("semantic", self.semantic_vocab_size), ("acoustic", self.acoustic_vocab_size))):
            stream = tokens[..., k]
            if stream.numel() and (int(stream.min()) < 0 or int(stream.max()) >= size):
                bad = stream[(stream < 0) | (stream >= size)][0].item()
                raise ValueError(
                    f"{argument} has {name} id {bad} outside [0, {size}) of this layout "
                    f"(codec variant {self.codec_variant!r}); the tokens come from another codec variant?"
                )

    def interleave(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Codec tokens -> LM ids in this layout's pattern.

        tokens:  LongTensor[B, T, 2] (or [T, 2]); ``[..., 0]`` semantic, ``[..., 1]`` acoustic ids.
        lengths: optional LongTensor[B], valid frames per clip; positions past ``2 * lengths[b]``
                 are filled with ``pad_id``.
        returns: LongTensor[B, 2T] (or [2T]) of LM ids.
        """
        import torch

        self.validate_tokens(tokens)
        unbatched = tokens.ndim == 2
        if unbatched:
            tokens = tokens.unsqueeze(0)
        tokens = tokens.long()
        batch, frames, _ = tokens.shape
        lengths = self._check_lengths(lengths, batch, frames, "lengths")
        sem = tokens[..., 0] + self.semantic_offset
        aco = tokens[..., 1] + self.acoustic_offset
        pos = torch.arange(2 * frames, device=tokens.device).expand(batch, -1)
        n = lengths.to(tokens.device).unsqueeze(1)
        if self.pattern == "interleave":
            ids = torch.stack([sem, aco], dim=-1).reshape(batch, 2 * frames)
        else:  # semantic_first, per clip: s_0 .. s_{n-1} a_0 .. a_{n-1}
            if frames == 0:
                ids = sem.new_zeros(batch, 0)
            else:
                s = sem.gather(1, pos.clamp(max=frames - 1))
                a = aco.gather(1, (pos - n).clamp(min=0, max=frames - 1))
                ids = torch.where(pos < n, s, a)
        ids = ids.masked_fill(pos >= 2 * n, self.pad_id)
        return ids[0] if unbatched else ids

    def deinterleave(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """LM ids of whole frames -> codec tokens (the inverse of ``interleave``).

        ids:     LongTensor[B, L] (or [L]) with L even; every id must sit where the pattern
                 puts its stream.
        lengths: optional LongTensor[B], valid LM ids per row (even); the rest is ignored and
                 the returned tokens are 0 there.
        returns: LongTensor[B, L // 2, 2] (or [L // 2, 2]).
        """
        import torch

        if not isinstance(ids, torch.Tensor):
            raise TypeError(f"ids must be a torch.Tensor, got {type(ids).__name__}.")
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise TypeError(f"ids must hold integer ids, got dtype {ids.dtype}.")
        if ids.ndim not in (1, 2):
            raise ValueError(f"ids must have shape [L] or [B, L], got {tuple(ids.shape)}.")
        unbatched = ids.ndim == 1
        if unbatched:
            ids = ids.unsqueeze(0)
        batch, length = ids.shape
        if length % 2:
            raise ValueError(f"ids must hold whole frames (an even number of audio ids), got length {length}.")
        frames = length // 2
        if lengths is None:
            lengths = torch.full((batch,), length, dtype=torch.long)
        else:
            lengths = self._check_lengths(lengths, batch, length, "lengths")
            if bool((lengths % 2).any()):
                raise ValueError(f"lengths must be even (whole frames), got {lengths.tolist()}.")
        ids = ids.long()
        pos = torch.arange(length, device=ids.device).expand(batch, -1)
        n = (lengths.to(ids.device) // 2).unsqueeze(1)  # frames per row
        valid = pos < 2 * n
        if self.pattern == "interleave":
            want_semantic = pos % 2 == 0
        else:
            want_semantic = pos < n
        ok = torch.where(want_semantic, self.is_semantic(ids), self.is_acoustic(ids)) | ~valid
        if not bool(ok.all()):
            b, p = (~ok).nonzero()[0].tolist()
            raise ValueError(
                f"ids[{b}, {p}] = {int(ids[b, p])} is not a {'semantic' if want_semantic[b, p] else 'acoustic'} id; "
                f"in the {self.pattern!r} pattern semantic ids are in [{self.semantic_offset}, {self.acoustic_offset}) "
                f"and acoustic ids in [{self.acoustic_offset}, {self.vocab_size})."
            )
        if self.pattern == "interleave":
            pairs = ids.reshape(batch, frames, 2)
            tokens = torch.stack([pairs[..., 0] - self.semantic_offset, pairs[..., 1] - self.acoustic_offset], -1)
        else:
            f = torch.arange(frames, device=ids.device).expand(batch, -1)
            sem = ids.gather(1, f) - self.semantic_offset
            aco = ids.gather(1, (f + n).clamp(max=max(length - 1, 0))) - self.acoustic_offset if frames else sem
            tokens = torch.stack([sem, aco], dim=-1)
        tokens = tokens.masked_fill((torch.arange(frames, device=ids.device).expand(batch, -1) >= n).unsqueeze(-1), 0)
        return tokens[0] if unbatched else tokens

    def validate_ids(self, ids: torch.Tensor, argument: str = "ids") -> None:
        """Every id must be inside ``[0, vocab_size)``."""
        import torch

        if not isinstance(ids, torch.Tensor):
            raise TypeError(f"{argument} must be a torch.Tensor, got {type(ids).__name__}.")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0].item()
            raise ValueError(f"{argument} has id {bad} outside the LM vocabulary [0, {self.vocab_size}).")

    # ----- pattern rules for generation ------------------------------------------------
    def allowed_next(
        self,
        n_semantic: torch.Tensor,
        n_acoustic: torch.Tensor,
        max_frames: torch.Tensor | int,
        min_frames: torch.Tensor | int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Which kind of id may come next inside an audio span.

        n_semantic, n_acoustic: LongTensor[B], ids of each stream written so far in the span.
        max_frames:             LongTensor[B] (or int), frames at which the span must end.
        min_frames:             LongTensor[B] (or int), frames before the span may end (>= 1).
        returns:                three BoolTensor[B]: a semantic id, an acoustic id,
                                ``<|audio_end|>`` may come next. Exactly the spans that
                                ``span_to_tokens`` decodes without loss can end.
        """
        import torch

        min_frames = torch.as_tensor(min_frames, device=n_semantic.device).clamp(min=1)
        frames_done = n_acoustic  # both patterns: a frame is complete once its acoustic id is written
        if self.pattern == "interleave":
            boundary = n_semantic == n_acoustic
            semantic_ok = boundary & (n_semantic < max_frames)
            acoustic_ok = n_semantic > n_acoustic
        else:
            boundary = n_semantic == n_acoustic
            semantic_ok = (n_acoustic == 0) & (n_semantic < max_frames)
            acoustic_ok = (n_semantic > n_acoustic) & (n_semantic >= min_frames)
        end_ok = boundary & (frames_done >= min_frames)
        return semantic_ok, acoustic_ok, end_ok

    def span_to_tokens(self, span: torch.Tensor) -> torch.Tensor:
        """The whole frames of one audio span (ids after ``<|audio_start|>``, before any
        ``<|audio_end|>``, i.e. a possibly truncated generation) -> LongTensor[T, 2].

        A trailing incomplete frame is dropped, so a generation cut at its length limit still
        decodes. Raises ``ValueError`` when an id is not where the pattern puts it.
        """
        import torch

        span = span.reshape(-1).long()
        if self.pattern == "interleave":
            frames = span.numel() // 2
            return self.deinterleave(span[: 2 * frames])
        n_sem = int(self.is_semantic(span).long().cumprod(0).sum())  # length of the semantic prefix
        n_aco = min(span.numel() - n_sem, n_sem)
        ids = torch.cat([span[:n_aco], span[n_sem : n_sem + n_aco]])
        return self.deinterleave(ids)

    # ----- codec compatibility ---------------------------------------------------------
    def check_codec(self, codec: AudioCodec, check_variant: bool = True) -> None:
        """Raise ``ValueError`` when ``codec`` cannot decode what an LM with this layout generates."""
        from semantilm.codec_api import check_codec, codec_description

        check_codec(codec)
        info = codec_description(codec)
        mine = {
            "semantic_vocab_size": self.semantic_vocab_size,
            "acoustic_vocab_size": self.acoustic_vocab_size,
            "frame_rate": self.frame_rate,
            "sample_rate": self.sample_rate,
        }
        if check_variant and self.codec_variant is not None:
            mine["variant"] = self.codec_variant
        wrong = {k: (v, info[k]) for k, v in mine.items() if info[k] != v}
        if wrong:
            details = "; ".join(f"{k}: layout {a!r}, codec {b!r}" for k, (a, b) in wrong.items())
            raise ValueError(
                f"token layout does not match codec {info['variant']!r} ({details}). Use the codec variant "
                "the LM was trained with, or build a new layout with AudioTokenLayout.for_codec(codec, ...)."
            )

    # ----- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["special_tokens"] = list(self.special_tokens)
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            **data,
            # Derived, for readers of the file; checked on load.
            "offsets": {
                "special": self.special_offset,
                "semantic": self.semantic_offset,
                "acoustic": self.acoustic_offset,
                "vocab_size": self.vocab_size,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioTokenLayout:
        data = dict(data)
        fmt = data.pop("format", FORMAT_NAME)
        version = data.pop("format_version", FORMAT_VERSION)
        if fmt != FORMAT_NAME or version != FORMAT_VERSION:
            raise ValueError(
                f"unsupported layout file format {fmt!r} version {version!r}; expected {FORMAT_NAME!r} v{FORMAT_VERSION}."
            )
        offsets = data.pop("offsets", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown AudioTokenLayout keys {unknown}; known keys are {sorted(known)}.")
        layout = cls(**data)
        if offsets is not None and offsets != layout.to_dict()["offsets"]:
            raise ValueError(f"layout file offsets {offsets} disagree with its sizes ({layout.to_dict()['offsets']}).")
        return layout

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``semantilm_config.json`` into ``directory`` (atomically); returns its path."""
        from codec.io import write_json

        return write_json(Path(directory) / LAYOUT_FILE, self.to_dict())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> AudioTokenLayout:
        """Read the layout saved beside an LM checkpoint."""
        path = Path(directory) / LAYOUT_FILE
        if not path.is_file():
            raise LayoutNotFoundError(
                f"{str(directory)!r} has no {LAYOUT_FILE}: it is not a semantilm checkpoint, or its token layout "
                "was not saved. Save checkpoints with semantilm.save_lm(...) (or layout.save_pretrained(dir))."
            )
        from codec.io import read_json_object

        return cls.from_dict(read_json_object(path, "token layout", "save it again with layout.save_pretrained(dir)"))

    # ----- helpers ---------------------------------------------------------------------
    @staticmethod
    def _check_lengths(lengths: torch.Tensor | None, batch: int, maximum: int, argument: str) -> torch.Tensor:
        import torch

        if lengths is None:
            return torch.full((batch,), maximum, dtype=torch.long)
        lengths = torch.as_tensor(lengths).long().reshape(-1).cpu()
        if lengths.numel() != batch:
            raise ValueError(f"{argument} must have {batch} entries (one per row), got {lengths.numel()}.")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > maximum):
            raise ValueError(f"{argument}={lengths.tolist()} must lie in [0, {maximum}].")
        return lengths
