"""Where audio tokens live in the LM vocabulary, and which token pattern writes them.

This is the only place where vocabulary offsets are defined. The LM vocabulary is::

    [0, text_vocab_size)                       text ids (the text tokenizer's own range)
    [text_vocab_size, S)                       special tokens: <|audio_start|>, <|audio_end|>, <|pad|>, ...
    [S, S + semantic_vocab_size)               semantic ids          S = semantic_offset
    [A, A + acoustic_vocab_size)               acoustic ids          A = acoustic_offset = S + V_s

The layout names its token pattern (``"interleave"``, the default, or ``"semantic_first"``); the
pattern, a class in ``semantilm.tokens.patterns``, decides the order in which codec tokens
``LongTensor[B, T, 2]`` become one LM id stream. The layout's ``interleave`` / ``deinterleave`` /
``allowed_next`` / ``span_to_tokens`` hand the work to it.

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

from semantilm.tokens.patterns import PATTERNS, TokenPattern, pattern_for

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from semantilm.codec_api import AudioCodec

__all__ = ["AudioTokenLayout", "LayoutNotFoundError", "LAYOUT_FILE", "PATTERNS", "AUDIO_START", "AUDIO_END", "PAD"]

LAYOUT_FILE = "semantilm_config.json"
FORMAT_NAME = "semantilm-token-layout"
FORMAT_VERSION = 1
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
    pattern:             name of the token pattern, a key of ``semantilm.tokens.patterns.PATTERNS``
                         (``"interleave"`` or ``"semantic_first"``).
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
        pattern_for(self.pattern)
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

    @property
    def token_pattern(self) -> TokenPattern:
        """The ``TokenPattern`` object named by ``pattern``."""
        return pattern_for(self.pattern)

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
        return self.token_pattern.build(self, tokens, lengths)

    def deinterleave(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """LM ids of whole frames -> codec tokens (the inverse of ``interleave``).

        ids:     LongTensor[B, L] (or [L]) with L even; every id must sit where the pattern
                 puts its stream.
        lengths: optional LongTensor[B], valid LM ids per row (even); the rest is ignored and
                 the returned tokens are 0 there.
        returns: LongTensor[B, L // 2, 2] (or [L // 2, 2]).
        """
        return self.token_pattern.revert(self, ids, lengths)

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

        max_frames = torch.as_tensor(max_frames, device=n_semantic.device)
        min_frames = torch.as_tensor(min_frames, device=n_semantic.device).clamp(min=1)
        return self.token_pattern.allowed_next(n_semantic, n_acoustic, max_frames, min_frames)

    def span_to_tokens(self, span: torch.Tensor) -> torch.Tensor:
        """The whole frames of one audio span (ids after ``<|audio_start|>``, before any
        ``<|audio_end|>``, i.e. a possibly truncated generation) -> LongTensor[T, 2].

        A trailing incomplete frame is dropped, so a generation cut at its length limit still
        decodes. Raises ``ValueError`` when an id is not where the pattern puts it.
        """
        return self.token_pattern.span_to_tokens(self, span)

    def check_prompt_span(self, span: torch.Tensor, argument: str = "prompt") -> None:
        """Raise ``ValueError`` unless ``span`` (LongTensor[L], the audio ids that end a prompt)
        can be continued by generation in this layout's pattern."""
        self.token_pattern.check_prompt(self, span, argument)

    def continuation_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """The audio ids (LongTensor[L]) after ``<|audio_start|>`` in a prompt that continues the
        clip ``tokens`` (LongTensor[T, 2]); which ids depends on the pattern."""
        return self.token_pattern.continuation_ids(self, tokens)

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
        from plumbing.io import write_json

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
        from plumbing.io import read_json_object

        return cls.from_dict(read_json_object(path, "token layout", "save it again with layout.save_pretrained(dir)"))
