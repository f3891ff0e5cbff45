"""The LM recipes' config schema: codec, data, model and training sections of one YAML file.

Read with :func:`plumbing.config_file.load_config`, which checks every key and type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from codec.config import OFFICIAL_TOKEN_RATES
from plumbing.config_file import (
    ConfigError,
    apply_overrides,
    check_field_types,
    from_dict,
    load_config,
    to_dict,
)
from semantilm.models.lm import LMConfig
from semantilm.models.lora import LoraSettings
from semantilm.training.generation_eval import GenerationEvalSection
from semantilm.training.trainer import TrainConfig

__all__ = [
    "ConfigError",
    "from_dict",
    "load_config",
    "apply_overrides",
    "to_dict",
    "CodecSection",
    "DataSection",
    "ModelSection",
    "GenerationEvalSection",
    "RecipeConfig",
]

# ----- the recipe schema ------------------------------------------------------------------
@dataclass
class CodecSection:
    """Which codec tokenises the audio (and, recorded in the checkpoint, decodes the LM's output).

    A key left unset (null) is taken from the token folder given as ``data.dataset`` (the codec its
    manifest records), else from the official default; a key that is set must agree with the
    token folder's codec (``semantilm.training.token_codec``).
    """

    name: str | None = None  # hub repo, local folder, "tiny" (embedded, trained) or "tiny-random" (random weights); null: the token folder's codec, else haoheliu/SemantiCodec
    token_rate: int | None = None  # official variant: 25, 50 or 100 tokens/s; null: the token folder's, else 100
    vocab: int | None = None  # official semantic vocabulary (ignored for tiny and save_pretrained folders); null: the token folder's, else 16384
    device: str = "auto"  # "auto": this process's GPU when there is one, else the CPU
    cache_dir: str | None = None  # Hugging Face cache for downloads

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.token_rate is not None and self.token_rate not in OFFICIAL_TOKEN_RATES:
            raise ValueError(f"token_rate must be 25, 50 or 100, got {self.token_rate}.")
        if self.name is not None and not self.name.strip():
            raise ValueError("name must not be empty; leave it out (null) to use the token folder's codec.")


@dataclass
class DataSection:
    """The training corpus and how it is tokenised."""

    dataset: str = "synthetic"  # "synthetic", a save_to_disk folder (audio or tokens), an audio folder, or a hub dataset
    split: str = "train"  # split of a DatasetDict or hub dataset
    audio_column: str = "audio"
    caption_column: str | None = "caption"  # text_to_audio only; continuation ignores captions
    max_examples: int | None = None  # use only the first N rows (None: all)
    synthetic_examples: int = 256  # size of the built-in synthetic sound set
    synthetic_seconds: float = 2.0  # clip length of the synthetic set
    synthetic_seed: int = 0
    token_cache: str | None = None  # tokenised shards (resumable); None: <train.output_dir>/tokens
    encode_batch_size: int = 16  # clips per codec call
    shard_size: int = 1000  # rows per cached shard
    eval_fraction: float = 0.0  # rows held out (seeded split) for evaluation every train.eval_steps
    eval_dataset: str | None = None  # or a token dataset folder (`semantilm tokenize`) to evaluate on
    on_too_long: Literal["error", "drop", "cut"] = "error"  # examples longer than train.max_length: stop, leave them out, or cut them

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("synthetic_examples", "encode_batch_size", "shard_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.max_examples is not None and self.max_examples <= 0:
            raise ValueError(f"max_examples must be positive or null, got {self.max_examples}.")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}.")
        if self.eval_fraction and self.eval_dataset is not None:
            raise ValueError("set at most one of eval_fraction and eval_dataset.")
        if self.synthetic_seconds <= 0:
            raise ValueError(f"synthetic_seconds must be positive, got {self.synthetic_seconds}.")


@dataclass
class ModelSection:
    """A from-scratch LM of a given size, or a pretrained LM (optionally with LoRA)."""

    size: str | None = "configs/lm/tiny.yaml"  # LMConfig YAML (a path or a shipped size, e.g. "tiny") for a from-scratch LM
    pretrained: str | None = None  # local folder or hub id of a causal LM (replaces `size`)
    lora: LoraSettings | None = None  # LoRA adapters on the pretrained LM (null: full fine-tuning)
    text_vocab_size: int = 4000  # sentencepiece vocabulary trained on the captions (from scratch)
    lowercase_captions: bool = True  # from scratch: the caption tokenizer folds case (training and generation alike)
    pattern: Literal["interleave", "semantic_first"] = "interleave"

    def __post_init__(self) -> None:
        check_field_types(self)
        if (self.size is None) == (self.pretrained is None):
            raise ValueError("set exactly one of size (from scratch) and pretrained.")
        if self.lora is not None and self.pretrained is None:
            raise ValueError("lora needs a pretrained model; a from-scratch LM trains all its weights.")
        if self.text_vocab_size < 8:
            raise ValueError(f"text_vocab_size must be at least 8, got {self.text_vocab_size}.")
        if self.size is not None:  # checked (and made absolute) when the recipe loads, before any work
            from semantilm.resources import resolve_config

            try:
                path = resolve_config(self.size, "lm", label="model.size")
            except OSError as err:
                raise ValueError(str(err)) from None
            LMConfig.from_yaml(path)  # its keys and values too
            self.size = str(path.resolve())
        if self.pretrained is not None:
            self.pretrained = _pretrained_location(self.pretrained)


@dataclass
class RecipeConfig:
    """One training recipe run (``configs/recipes/<task>/*.yaml``)."""

    task: Literal["text_to_audio", "continuation"]
    codec: CodecSection = field(default_factory=CodecSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    resume: bool = True  # continue from the newest checkpoint in train.output_dir, if any
    log_data_order: bool = False  # write the example ids each process collated to <output_dir>/data_order/
    eval: GenerationEvalSection = field(default_factory=GenerationEvalSection)  # judge generated audio after training

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.task == "text_to_audio" and self.data.caption_column is None:
            raise ValueError("task text_to_audio needs data.caption_column (the captions to condition on).")
        wanted = {self.data.on_too_long, self.train.on_too_long} - {"error"}  # "error" is both defaults
        if len(wanted) > 1:
            raise ValueError(f"data.on_too_long={self.data.on_too_long!r} but train.on_too_long="
                             f"{self.train.on_too_long!r}; set data.on_too_long only.")
        if wanted:  # train_lm reads train.on_too_long; the recipe's key is data.on_too_long
            self.data.on_too_long = self.train.on_too_long = wanted.pop()
        if self.eval.generation and self.task != "text_to_audio":
            raise ValueError("eval.generation judges audio generated for captions: it needs task text_to_audio.")
        if self.eval.generation and not (self.data.eval_fraction or self.data.eval_dataset):
            raise ValueError("eval.generation generates the captions of held-out rows: set data.eval_fraction or "
                             "data.eval_dataset.")


def _pretrained_location(name: str) -> str:
    """``model.pretrained`` as it is recorded (a LoRA adapter names its base by it): an existing
    local folder as an absolute path, so that the checkpoint loads from any folder; a hub id as it is.
    A path that does not exist is refused now, not after the data are tokenised."""
    from pathlib import Path

    from codec.checkpoints import looks_like_a_path

    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists() or looks_like_a_path(name):
        raise ValueError(f"pretrained={name!r} is not a folder of a pretrained LM (a hub id is 'owner/name'); "
                         "check the path.")
    return name


