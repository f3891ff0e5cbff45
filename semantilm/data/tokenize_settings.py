"""``TokenizeSettings``: what ``tokenize_corpus`` reads from its input and how it encodes it.

One frozen object instead of a long argument list; every field is checked when the object is made,
and a bad value is a ``ConfigError`` naming the field and the value (``semantilm tokenize`` builds
one from its command line, a recipe from its ``data`` section).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plumbing.config_file import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from codec.data import SyntheticSoundConfig

__all__ = ["TokenizeSettings", "default_num_workers", "ON_ERROR", "DTYPE_NAMES"]

ON_ERROR = ("skip", "stop")
DTYPE_NAMES = ("float32", "bfloat16", "float16")


def default_num_workers(device: str) -> int:
    """Reader processes by default: none on the CPU, 2 beside an accelerator.

    On the CPU the encoder's threads already use every core; reader processes there only take
    turns with them (tiny codec on 2 cores: 19.3 s in-process with none, 25.3 s with 2). Beside a
    GPU they read and resample while it encodes."""
    return 0 if str(device).split(":")[0] == "cpu" else 2


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class TokenizeSettings:
    """How ``tokenize_corpus`` tokenises (every field has a default).

    What to read:
      split:          split of a ``DatasetDict`` or hub data set.
      audio_column:   column of a data set that holds the audio.
      caption_column: column written as ``caption`` (None: columns are carried under their names).
      sample_rate:    rate of audio cells that are bare arrays of samples (other cells carry theirs).
      max_examples:   only the first N inputs (None: all).
      streaming:      stream a hub data set (``datasets.IterableDataset``).
      synthetic:      size, length and seed of the ``"synthetic"`` input.
    How to encode:
      batch_size:  clips per codec call.
      shard_size:  inputs per shard (the unit of resuming and of work between processes; a tar is one).
      num_workers: ``DataLoader`` processes reading audio; None: :func:`default_num_workers`.
      device:      torch device of the codec.
      dtype:       encoder precision; ``bfloat16`` / ``float16`` (CUDA autocast) need a CUDA device.
      on_error:    ``skip``: an input that cannot be tokenised is a line of ``failures.jsonl``;
                   ``stop``: it raises ``TokenizeError`` naming it.
    """

    split: str = "train"
    audio_column: str = "audio"
    caption_column: str | None = None
    sample_rate: int | None = None
    max_examples: int | None = None
    streaming: bool = False
    synthetic: SyntheticSoundConfig | None = None
    batch_size: int = 16
    shard_size: int = 512
    num_workers: int | None = None
    device: str = "cpu"
    dtype: str = "float32"
    on_error: str = "skip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", _device_name(self.device))
        for name in ("split", "audio_column"):
            _require(name, getattr(self, name), isinstance(getattr(self, name), str) and getattr(self, name) != "",
                     "a non-empty text")
        caption = self.caption_column
        _require("caption_column", caption, caption is None or (isinstance(caption, str) and caption != ""),
                 "None or a non-empty column name")
        for name in ("batch_size", "shard_size"):
            value = getattr(self, name)
            _require(name, value, _whole(value) and value > 0, "a positive integer")
        for name in ("sample_rate", "max_examples"):
            value = getattr(self, name)
            _require(name, value, value is None or (_whole(value) and value > 0), "None or a positive integer")
        workers = self.num_workers
        _require("num_workers", workers, workers is None or (_whole(workers) and workers >= 0),
                 "None or an integer >= 0")
        _require("streaming", self.streaming, isinstance(self.streaming, bool), "True or False")
        _require("on_error", self.on_error, self.on_error in ON_ERROR, f"one of {ON_ERROR}")
        _require("dtype", self.dtype, self.dtype in DTYPE_NAMES, f"one of {DTYPE_NAMES}")
        if self.dtype != "float32" and not self.device.startswith("cuda"):
            raise ConfigError(f"TokenizeSettings.dtype={self.dtype!r} needs a CUDA device (device={self.device!r}); "
                              "on the CPU the codec encodes in float32.")

    @property
    def readers(self) -> int:
        """``num_workers``, or the default for ``device`` when it is None."""
        return default_num_workers(self.device) if self.num_workers is None else self.num_workers


def _require(name: str, value: Any, ok: bool, wanted: str) -> None:
    if not ok:
        raise ConfigError(f"TokenizeSettings.{name} must be {wanted}, got {value!r}.")


def _device_name(device: Any) -> str:
    """``device`` (a name or a ``torch.device``) as torch names it; a ``ConfigError`` when torch does not know it."""
    import torch

    try:
        return str(torch.device(device))
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"TokenizeSettings.device must be a torch device such as 'cpu' or 'cuda:0', got "
                          f"{device!r}.") from err
