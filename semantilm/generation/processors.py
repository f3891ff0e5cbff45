"""The logits processor of audio generation: the token-pattern constraint.

``AudioTokenConstraintLogitsProcessor`` makes everything ``generate`` writes decodable: inside
an audio span it allows exactly the id kinds the layout's token pattern allows next
(``<|audio_end|>`` only where a span may end) and forces the end at the frame limit.
"""

from __future__ import annotations

import math

import torch
from transformers import LogitsProcessor

from semantilm.tokens.layout import AudioTokenLayout

__all__ = ["AudioTokenConstraintLogitsProcessor"]


class AudioTokenConstraintLogitsProcessor(LogitsProcessor):
    """Masks every id that would break the audio span's pattern.

    For each row, the span starts after the last ``<|audio_start|>`` in ``input_ids``. Inside
    it, exactly the id kinds that the layout's token pattern allows next keep their scores
    (``AudioTokenLayout.allowed_next``: semantic, acoustic, ``<|audio_end|>``, or any mix of
    them; interleave: semantic or end at even, acoustic at odd positions; semantic_first: after
    ``min_frames`` semantic ids, another semantic id or the first acoustic one, so the LM
    chooses the clip's length). Where the pattern allows nothing (only a prompt that is
    already past the frame limits gets there), ``<|audio_end|>`` is the only choice. Rows without an open span may only
    open one; rows whose span ended may only pad.

    layout:     the LM's token layout.
    max_frames: int or LongTensor[B] frame limit per row (counting frames already in the prompt).
    min_frames: int or LongTensor[B], frames a span holds at least before it may end
                (>= 1: empty audio cannot decode).
    """

    def __init__(
        self, layout: AudioTokenLayout, max_frames: int | torch.Tensor, min_frames: int | torch.Tensor = 1
    ):
        if not isinstance(layout, AudioTokenLayout):
            raise TypeError(f"layout must be an AudioTokenLayout, got {type(layout).__name__}.")
        limits = {}
        for name, value in (("max_frames", max_frames), ("min_frames", min_frames)):
            if isinstance(value, (bool, float)):
                raise TypeError(f"{name} must be an int or a LongTensor[B], got {value!r}.")
            t = torch.as_tensor(value)
            if t.dtype.is_floating_point or t.dtype == torch.bool or t.ndim > 1 or t.numel() == 0:
                raise TypeError(f"{name} must be an int or a LongTensor[B], got {value!r}.")
            limits[name] = t.long()
        if int(limits["min_frames"].min()) < 1:
            raise ValueError(f"min_frames={limits['min_frames'].tolist()} must be >= 1 (empty audio cannot decode).")
        if bool((limits["max_frames"] < limits["min_frames"]).any()):
            raise ValueError(
                f"max_frames={limits['max_frames'].tolist()} must be >= min_frames={limits['min_frames'].tolist()}."
            )
        self.layout = layout
        self.max_frames = limits["max_frames"]
        self.min_frames = limits["min_frames"]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """input_ids LongTensor[B, L], scores FloatTensor[B, V] -> new FloatTensor[B, V]."""
        lay = self.layout
        if scores.shape[-1] < lay.vocab_size:
            raise ValueError(f"scores have {scores.shape[-1]} columns but the layout needs {lay.vocab_size}.")
        device = scores.device
        ids = input_ids.to(device)
        batch, length = ids.shape
        pos = torch.arange(length, device=device)
        last_start = torch.where(ids == lay.audio_start_id, pos, -1).amax(-1) if length else ids.new_full((batch,), -1)
        in_span = pos.unsqueeze(0) > last_start.unsqueeze(1)
        ended = ((ids == lay.audio_end_id) & in_span).any(-1)
        n_sem = (lay.is_semantic(ids) & in_span).sum(-1)
        n_aco = (lay.is_acoustic(ids) & in_span).sum(-1)
        max_frames, min_frames = (self._per_row(t, batch, device) for t in (self.max_frames, self.min_frames))
        sem_ok, aco_ok, end_ok = lay.allowed_next(n_sem, n_aco, max_frames, min_frames)

        # Each row picks one of ten column masks (built once per vocab width and device): inside a
        # span, row s + 2a + 4e allows the kinds allowed_next names (row 0, where it names none:
        # the end); 8 start; 9 pad.
        cols = self._columns(scores.shape[-1], device)  # BoolTensor[10, V]
        span_kind = sem_ok.long() + 2 * aco_ok.long() + 4 * end_ok.long()
        kind = torch.where(ended, 9, torch.where(last_start < 0, 8, span_kind))
        allowed = cols[kind]
        return scores.masked_fill(~allowed, -math.inf)

    def _columns(self, width: int, device: torch.device) -> torch.Tensor:
        key = (width, str(device))
        if getattr(self, "_cols_key", None) != key:
            lay = self.layout
            vocab = torch.arange(width, device=device)
            sem = (vocab >= lay.semantic_offset) & (vocab < lay.acoustic_offset)
            aco = (vocab >= lay.acoustic_offset) & (vocab < lay.vocab_size)
            end = vocab == lay.audio_end_id
            in_span = [(sem & bool(k & 1)) | (aco & bool(k & 2)) | (end & bool(k & 4)) for k in range(8)]
            in_span[0] = end
            self._cols = torch.stack([*in_span, vocab == lay.audio_start_id, vocab == lay.pad_id])
            self._cols_key = key
        return self._cols

    @staticmethod
    def _per_row(t: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
        t = t.to(device)
        if t.ndim == 0:
            return t.expand(batch)
        if t.shape[0] != batch:
            raise ValueError(f"a per-row frame limit has {t.shape[0]} rows but the batch has {batch}.")
        return t

