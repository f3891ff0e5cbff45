"""What a codec training stage leaves in its output dir besides weights: the per-step loss
history (``history.jsonl``) and the marker of complete checkpoints.

:func:`codec.training.trainer.train_stage` and the semantic stage write them; resuming and
:mod:`codec.training.export` read them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["CHECKPOINT_DONE", "HISTORY_FILE", "HistoryLog", "latest_checkpoint", "read_history"]

CHECKPOINT_DONE = "checkpoint_complete"  # written last into a checkpoint folder
HISTORY_FILE = "history.jsonl"  # one JSON object per optimiser step: step, wall_s, averaged losses, lr


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """Newest complete ``checkpoints/checkpoint-N`` folder under ``output_dir``, if any."""
    root = Path(output_dir) / "checkpoints"
    done = [p for p in root.glob("checkpoint-*") if (p / CHECKPOINT_DONE).is_file() and p.name[11:].isdigit()]
    return max(done, key=lambda p: int(p.name[11:]), default=None)


def read_history(output_dir: str | Path) -> list[dict[str, float]]:
    """The records of ``<output_dir>/history.jsonl`` (empty when there is none); a line cut off
    by a killed run is skipped."""
    path = Path(output_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


class HistoryLog:
    """Appends ``{"step", "wall_s", **logs}`` lines to ``<output_dir>/history.jsonl``.

    Records after ``resume_step`` (from a run that stopped after its last checkpoint) are dropped;
    ``wall_s`` goes on from the last kept record, so it counts the time of every run. ``enabled``
    False (processes other than the main one) writes nothing.
    """

    def __init__(self, output_dir: str | Path, resume_step: int, enabled: bool = True) -> None:
        self.path, self.enabled, self.offset = Path(output_dir) / HISTORY_FILE, enabled, 0.0
        if enabled:
            kept = [r for r in read_history(output_dir) if r["step"] <= resume_step]
            self.offset = float(kept[-1].get("wall_s", 0.0)) if kept else 0.0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.start = time.monotonic()

    def append(self, step: int, logs: dict[str, float]) -> None:
        if self.enabled:
            wall = round(self.offset + time.monotonic() - self.start, 3)
            with self.path.open("a") as f:
                f.write(json.dumps({"step": step, "wall_s": wall, **logs}) + "\n")
