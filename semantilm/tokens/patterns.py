"""Token patterns: the order in which a clip's codec tokens are written as one LM id span.

A codec clip is ``LongTensor[T, 2]``: T frames, each a semantic id (``[:, 0]``) and an acoustic
id (``[:, 1]``). The LM sees it as a span of ``2T`` ids between ``<|audio_start|>`` and
``<|audio_end|>``; a pattern decides which id sits at each position of that span.

* ``InterleavePattern`` (``"interleave"``): frame after frame, ``s_0 a_0 s_1 a_1 ...``.
* ``SemanticFirstPattern`` (``"semantic_first"``): ``s_0 ... s_{T-1} a_0 ... a_{T-1}``.

A pattern defines four small rules (``positions``, ``allowed_next``, ``complete_frames``,
``continuation_ids``); building, reverting and truncating spans are written once, in
``TokenPattern``, on top of them. A new pattern is one subclass added to ``PATTERNS``.

Patterns hold no state: the id offsets come from the ``AudioTokenLayout`` passed to each method
(semantic id ``s`` is LM id ``layout.semantic_offset + s``, acoustic id ``a`` is
``layout.acoustic_offset + a``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import torch


class AudioTokenLayout(Protocol):
    """What a pattern reads of :class:`semantilm.tokens.layout.AudioTokenLayout`: the id ranges."""

    semantic_offset: int
    acoustic_offset: int
    vocab_size: int
    pad_id: int

    def is_semantic(self, ids: torch.Tensor) -> torch.Tensor: ...

    def is_acoustic(self, ids: torch.Tensor) -> torch.Tensor: ...

    def validate_tokens(self, tokens: torch.Tensor, argument: str = "tokens") -> None: ...

__all__ = ["TokenPattern", "InterleavePattern", "SemanticFirstPattern", "PATTERNS", "pattern_for"]


class TokenPattern:
    """Base class of the token patterns. Subclasses set ``name`` and define:

    ``positions``         which stream and which frame every span position holds;
    ``allowed_next``      which id kind generation may write next;
    ``complete_frames``   the whole frames of a possibly truncated span;
    ``continuation_ids``  the audio ids a continuation prompt gives for a clip.

    ``check_prompt`` may be overridden when a prompt must end at particular positions.
    """

    name: ClassVar[str] = ""

    # ----- rules every pattern defines ---------------------------------------------------
    def positions(self, frames: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Where each id of a span goes.

        frames:  LongTensor[B, 1], whole frames of each row's span (its first ``2 * frames`` positions).
        length:  L, positions per row.
        returns: (BoolTensor[B, L] true where the position holds a semantic id,
                  LongTensor[B, L] the frame whose id it holds). Only positions ``p < 2 * frames``
                 are read; each (frame < frames, stream) pair must appear there exactly once.
        """
        raise NotImplementedError

    def allowed_next(
        self, n_semantic: torch.Tensor, n_acoustic: torch.Tensor, max_frames: torch.Tensor, min_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Which kind of id may come next inside an audio span.

        n_semantic, n_acoustic: LongTensor[B], ids of each stream written so far in the span.
        max_frames:             LongTensor[B] (or 0-d), frames at which the span must end.
        min_frames:             LongTensor[B] (or 0-d), frames before the span may end (>= 1).
        returns:                three BoolTensor[B]: a semantic id, an acoustic id,
                                ``<|audio_end|>`` may come next. Exactly the spans that
                                ``span_to_tokens`` decodes without loss may end.
        """
        raise NotImplementedError

    def complete_frames(self, layout: AudioTokenLayout, span: torch.Tensor) -> torch.Tensor:
        """The ids of the whole frames of ``span``, in this pattern's order.

        span:    LongTensor[L], audio ids after ``<|audio_start|>`` (a generation possibly cut
                 at any position).
        returns: LongTensor[2K], the span of the first K frames whose ids are all in ``span``.
        """
        raise NotImplementedError

    def continuation_ids(self, layout: AudioTokenLayout, tokens: torch.Tensor) -> torch.Tensor:
        """The audio ids that follow ``<|audio_start|>`` in a prompt that continues a clip.

        tokens:  LongTensor[T, 2] codec tokens of the clip.
        returns: LongTensor[L] of LM ids; generation extends them to a span of more frames.
        """
        raise NotImplementedError

    def check_prompt(self, layout: AudioTokenLayout, span: torch.Tensor, argument: str = "prompt") -> None:
        """Raise ``ValueError`` unless ``span`` (LongTensor[L], the audio ids that end a prompt)
        is the beginning of a span this pattern writes: every id must be of a kind that
        ``allowed_next`` allows after the ids before it."""
        import torch

        span = span.reshape(-1).long()
        semantic, acoustic = layout.is_semantic(span), layout.is_acoustic(span)
        n_semantic = semantic.long().cumsum(0) - semantic.long()  # ids of each stream before each position
        n_acoustic = acoustic.long().cumsum(0) - acoustic.long()
        no_limit = torch.tensor(span.numel() + 1)
        semantic_ok, acoustic_ok, _ = self.allowed_next(n_semantic, n_acoustic, no_limit, torch.tensor(1))
        ok = (semantic & semantic_ok) | (acoustic & acoustic_ok)
        if not bool(ok.all()):
            p = int((~ok).nonzero()[0])
            raise ValueError(
                f"{argument} has id {int(span[p])} at position {p} of its audio span, where the {self.name!r} "
                f"pattern allows no such id (semantic ids are in [{layout.semantic_offset}, {layout.acoustic_offset}), "
                f"acoustic ids in [{layout.acoustic_offset}, {layout.vocab_size}))."
            )

    # ----- built on the rules ------------------------------------------------------------
    def build(self, layout: AudioTokenLayout, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Codec tokens -> LM ids.

        tokens:  LongTensor[B, T, 2] (or [T, 2]); ``[..., 0]`` semantic, ``[..., 1]`` acoustic ids.
        lengths: optional LongTensor[B], valid frames per clip; positions past ``2 * lengths[b]``
                 are filled with ``layout.pad_id``.
        returns: LongTensor[B, 2T] (or [2T]).
        """
        import torch

        layout.validate_tokens(tokens)
        unbatched = tokens.ndim == 2
        if unbatched:
            tokens = tokens.unsqueeze(0)
        tokens = tokens.long()
        batch, frames, _ = tokens.shape
        n = _check_lengths(lengths, batch, frames, "lengths").to(tokens.device).unsqueeze(1)
        if frames == 0:
            ids = tokens.new_zeros(batch, 0)
        else:
            semantic, frame = self.positions(n, 2 * frames)
            frame = frame.clamp(0, frames - 1)
            sem = (tokens[..., 0] + layout.semantic_offset).gather(1, frame)
            aco = (tokens[..., 1] + layout.acoustic_offset).gather(1, frame)
            ids = torch.where(semantic, sem, aco)
        pos = torch.arange(2 * frames, device=tokens.device).expand(batch, -1)
        ids = ids.masked_fill(pos >= 2 * n, layout.pad_id)
        return ids[0] if unbatched else ids

    def revert(self, layout: AudioTokenLayout, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """LM ids of whole frames -> codec tokens (the inverse of ``build``).

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
        lengths = _check_lengths(lengths, batch, length, "lengths")
        if bool((lengths % 2).any()):
            raise ValueError(f"lengths must be even (whole frames), got {lengths.tolist()}.")
        ids = ids.long()
        n = (lengths.to(ids.device) // 2).unsqueeze(1)
        semantic, frame = self.positions(n, length)
        valid = torch.arange(length, device=ids.device).expand(batch, -1) < 2 * n
        self._check_streams(layout, ids, semantic, valid)
        values = torch.where(semantic, ids - layout.semantic_offset, ids - layout.acoustic_offset)
        slot = torch.where(valid, 2 * frame + (~semantic).long(), length)  # invalid positions go to a spare column
        tokens = ids.new_zeros(batch, length + 1).scatter(1, slot, torch.where(valid, values, 0))
        tokens = tokens[:, :length].reshape(batch, length // 2, 2)
        return tokens[0] if unbatched else tokens

    def span_to_tokens(self, layout: AudioTokenLayout, span: torch.Tensor) -> torch.Tensor:
        """The whole frames of one audio span (ids after ``<|audio_start|>``, before any
        ``<|audio_end|>``, i.e. a possibly truncated generation) -> LongTensor[T, 2].

        A trailing incomplete frame is dropped, so a generation cut at its length limit still
        decodes. Raises ``ValueError`` when an id is not where the pattern puts it.
        """
        return self.revert(layout, self.complete_frames(layout, span.reshape(-1).long()))

    def _check_streams(
        self, layout: AudioTokenLayout, ids: torch.Tensor, semantic: torch.Tensor, valid: torch.Tensor
    ) -> None:
        """ValueError naming the first valid position of ``ids`` [B, L] whose id is not of the stream
        ``semantic`` [B, L] asks for."""
        import torch

        ok = torch.where(semantic, layout.is_semantic(ids), layout.is_acoustic(ids)) | ~valid
        if not bool(ok.all()):
            b, p = (~ok).nonzero()[0].tolist()
            raise ValueError(
                f"ids[{b}, {p}] = {int(ids[b, p])} is not a {'semantic' if semantic[b, p] else 'acoustic'} id; "
                f"in the {self.name!r} pattern semantic ids are in [{layout.semantic_offset}, "
                f"{layout.acoustic_offset}) and acoustic ids in [{layout.acoustic_offset}, {layout.vocab_size})."
            )


class InterleavePattern(TokenPattern):
    """``s_0 a_0 s_1 a_1 ...``: one frame after another; frames start at the even positions.

    A continuation prompt gives the whole clip and must end at a frame boundary.
    """

    name = "interleave"

    def positions(self, frames: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        pos = torch.arange(length, device=frames.device).expand(frames.shape[0], -1)
        return pos % 2 == 0, pos // 2

    def allowed_next(self, n_semantic, n_acoustic, max_frames, min_frames):
        boundary = n_semantic == n_acoustic
        semantic_ok = boundary & (n_semantic < max_frames)
        acoustic_ok = n_semantic > n_acoustic
        end_ok = boundary & (n_acoustic >= min_frames)
        return semantic_ok, acoustic_ok, end_ok

    def complete_frames(self, layout: AudioTokenLayout, span: torch.Tensor) -> torch.Tensor:
        return span[: 2 * (span.numel() // 2)]

    def continuation_ids(self, layout: AudioTokenLayout, tokens: torch.Tensor) -> torch.Tensor:
        return self.build(layout, tokens)

    def check_prompt(self, layout: AudioTokenLayout, span: torch.Tensor, argument: str = "prompt") -> None:
        super().check_prompt(layout, span, argument)
        if span.numel() % 2:
            raise ValueError(f"{argument} ends inside a frame; give whole frames of audio.")


class SemanticFirstPattern(TokenPattern):
    """``s_0 ... s_{T-1} a_0 ... a_{T-1}``: all semantic ids of the clip, then all its acoustic ids.

    The two id ranges are disjoint, so the first acoustic id marks the switch and the clip ends
    once there are as many acoustic as semantic ids. A continuation prompt gives only the
    clip's semantic ids; the acoustic ids of the whole clip, prompt included, are generated.
    """

    name = "semantic_first"

    def positions(self, frames: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        pos = torch.arange(length, device=frames.device).expand(frames.shape[0], -1)
        semantic = pos < frames
        return semantic, torch.where(semantic, pos, pos - frames)

    def allowed_next(self, n_semantic, n_acoustic, max_frames, min_frames):
        boundary = n_semantic == n_acoustic
        semantic_ok = (n_acoustic == 0) & (n_semantic < max_frames)
        acoustic_ok = (n_semantic > n_acoustic) & (n_semantic >= min_frames)
        end_ok = boundary & (n_acoustic >= min_frames)
        return semantic_ok, acoustic_ok, end_ok

    def complete_frames(self, layout: AudioTokenLayout, span: torch.Tensor) -> torch.Tensor:
        import torch

        n_sem = int(layout.is_semantic(span).long().cumprod(0).sum())  # length of the semantic prefix
        n_aco = min(span.numel() - n_sem, n_sem)
        return torch.cat([span[:n_aco], span[n_sem : n_sem + n_aco]])

    def continuation_ids(self, layout: AudioTokenLayout, tokens: torch.Tensor) -> torch.Tensor:
        return self.build(layout, tokens)[: tokens.shape[0]]


PATTERNS: dict[str, type[TokenPattern]] = {p.name: p for p in (InterleavePattern, SemanticFirstPattern)}


def pattern_for(name: str) -> TokenPattern:
    """The pattern called ``name``; ``ValueError`` naming the registered names otherwise."""
    cls = PATTERNS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"pattern={name!r} is not supported; use one of {tuple(PATTERNS)}.")
    return cls()


def _check_lengths(lengths: torch.Tensor | None, batch: int, maximum: int, argument: str) -> torch.Tensor:
    """LongTensor[B] (on the CPU) of per-row lengths in ``[0, maximum]``; all ``maximum`` when None."""
    import torch

    if lengths is None:
        return torch.full((batch,), maximum, dtype=torch.long)
    lengths = torch.as_tensor(lengths).long().reshape(-1).cpu()
    if lengths.numel() != batch:
        raise ValueError(f"{argument} must have {batch} entries (one per row), got {lengths.numel()}.")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > maximum):
        raise ValueError(f"{argument}={lengths.tolist()} must lie in [0, {maximum}].")
    return lengths
