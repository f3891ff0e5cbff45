"""Token generation in a background thread, watched step by step: what streaming audio needs.

The decoding loop (``loop.generate_ids``) runs to the end in one call. ``LMThread`` runs such a
call in a thread with a ``StepTap`` among its logits processors; the tap sees the ids written so
far at every step, as every processor does, and hands a copy to the consumer when it asked for
one (after a number of ids, or when a row has just ended). The tap changes no score and draws
nothing, so the thread writes the ids the same call writes without it; the LM keeps sampling
from torch's global generator, which nothing else may draw from while the thread runs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["LMThread", "StepTap"]


class _Cancelled(Exception):
    """Raised inside the generation call to stop it when the consumer has gone."""


class StepTap:
    """A pass-through logits processor that hands the ids so far to an ``LMThread``.

    ``generate`` calls it once per step with ids LongTensor[B, L] (prompts and what was written
    before this step) and the scores, which it returns unchanged.
    """

    def __init__(self, owner: LMThread):
        self.owner = owner

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.owner._step(input_ids)
        return scores


class LMThread:
    """Runs ``run(tap)`` in a daemon thread; ``wait`` returns snapshots of its ids as it goes.

    run:    the generation call; it must pass ``tap`` to ``generate_tokens`` as ``observer``.
    end_id: the id that ends a row (``<|audio_end|>``): a snapshot is taken the step after a row
            writes it, so that the consumer learns of every ending.
    """

    def __init__(self, run: Callable[[StepTap], Any], end_id: int):
        self._run = run
        self._end_id = end_id
        self._cond = threading.Condition()
        self._snapshot: torch.Tensor | None = None
        self._wake_at: float = 0  # take a snapshot once the ids are this wide (the first step: 0)
        self._finished = False
        self._cancelled = False
        self._result: Any = None
        self._error: BaseException | None = None
        self.tap = StepTap(self)
        self._thread = threading.Thread(target=self._main, name="semantilm-lm", daemon=True)

    def start(self) -> LMThread:
        self._thread.start()
        return self

    def wait(self) -> torch.Tensor | None:
        """Block until a snapshot is due and return it (ids LongTensor[B, L] on the CPU), or None
        once the run has finished (``result`` then returns what it returned)."""
        with self._cond:
            while self._snapshot is None and not self._finished:
                self._cond.wait()
            snapshot, self._snapshot = self._snapshot, None
            return snapshot

    def wake_at(self, width: int) -> None:
        """Ask for the next snapshot once the ids are ``width`` wide (or a row ends before)."""
        with self._cond:
            self._wake_at = width

    def result(self) -> Any:
        """What ``run`` returned; re-raises its exception in the caller's thread."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def close(self) -> None:
        """Stop the run at its next step (when still running) and wait for the thread."""
        self._cancelled = True
        if self._thread.is_alive():
            self._thread.join()

    # ----- the generation thread ---------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._result = self._run(self.tap)
        except _Cancelled:
            pass
        except BaseException as err:  # handed to the consumer by result()
            self._error = err
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def _step(self, ids: torch.Tensor) -> None:
        if self._cancelled:
            raise _Cancelled
        due = ids.shape[1] >= self._wake_at or bool((ids[:, -1] == self._end_id).any())
        if due:
            snapshot = ids.detach().to("cpu", copy=True)
            with self._cond:
                self._snapshot, self._wake_at = snapshot, math.inf
                self._cond.notify_all()
