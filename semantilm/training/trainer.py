"""Training with ``transformers.Trainer``: checkpoints carry the token layout and the text
tokenizer, and ``resume_from_checkpoint`` continues exactly where a run stopped (optimizer,
scheduler, RNG and data position are restored by the Trainer).

Single process here; ``accelerate launch`` runs the same code on several GPUs (recipes).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["TrainConfig", "train_lm", "last_checkpoint", "build_collator", "resolve_report_to", "resolve_use_cpu"]

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (YAML at the recipe level)."""

    output_dir: str = "outputs/lm"
    max_steps: int = 1000
    batch_size: int = 8  # per device
    gradient_accumulation_steps: int = 1
    learning_rate: float = 3e-4
    weight_decay: float = 0.1
    warmup_steps: int = 0
    lr_scheduler_type: str = "cosine"
    max_grad_norm: float = 1.0
    save_steps: int = 500
    save_total_limit: int | None = 3
    logging_steps: int = 50
    seed: int = 0
    max_length: int = 2048  # LM tokens per row
    packing: bool = False  # pack rows to max_length instead of padding
    caption_dropout: float = 0.1  # for classifier-free guidance
    mask_text: bool = True  # do not learn captions
    bf16: bool = False
    dataloader_num_workers: int = 0
    disable_tqdm: bool = False
    use_cpu: bool | None = None  # None: the CPU when no GPU is visible (then DDP runs over gloo)
    report_to: str = "none"  # "none", "auto" (tensorboard when installed), or a transformers integration

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1], got {self.caption_dropout}.")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> TrainConfig:
        import yaml

        data = {**(yaml.safe_load(Path(path).read_text()) or {}), **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown TrainConfig keys {unknown}; known keys are {sorted(known)}.")
        return cls(**data)


def _layout_callback(tokenizer: AudioTextTokenizer) -> Any:
    from transformers import TrainerCallback

    class SaveLayoutCallback(TrainerCallback):
        """Writes ``semantilm_config.json`` and the text tokenizer into every checkpoint."""

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                tokenizer.save_pretrained(folder)
                tokenizer.layout.save_pretrained(folder)
            return control

    return SaveLayoutCallback()


def resolve_report_to(report_to: str) -> list[str]:
    """``TrainConfig.report_to`` -> the Trainer's list; ``"auto"`` is tensorboard when installed."""
    import importlib.util

    if report_to == "auto":
        found = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
        return ["tensorboard"] if found else []
    return [] if report_to in ("none", "") else [r.strip() for r in report_to.split(",") if r.strip()]


def resolve_use_cpu(setting: bool | None) -> bool:
    """``TrainConfig.use_cpu`` resolved. The Trainer must be told: without it, processes that
    ``accelerate launch`` started on a machine without GPUs would each train alone."""
    if setting is not None:
        return setting
    import torch

    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def build_collator(tokenizer: AudioTextTokenizer, config: TrainConfig) -> Any:
    """The ``AudioLMCollator`` that ``train_lm`` uses for ``config``."""
    from semantilm.data.collator import AudioLMCollator

    return AudioLMCollator(
        tokenizer,
        max_length=config.max_length,
        mode="pack" if config.packing else "pad",
        caption_dropout=config.caption_dropout,
        mask_text=config.mask_text,
    )


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` folder under ``output_dir`` that holds its layout, or None."""
    from semantilm.tokens.layout import LAYOUT_FILE

    folders = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    folders = [p for p in folders if (p / LAYOUT_FILE).is_file()]
    return str(max(folders, key=lambda p: int(p.name.split("-")[-1]))) if folders else None


def train_lm(
    model: Any,
    tokenizer: AudioTextTokenizer,
    train_dataset: Dataset,
    config: TrainConfig,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list[Any] | None = None,
    save_final: bool = True,
    data_collator: Any = None,
) -> Any:
    """Train ``model`` on token rows (``encode_audio_dataset`` output) and return the Trainer.

    resume_from_checkpoint: a ``checkpoint-N`` folder, or True for the newest one in
                            ``config.output_dir``.
    save_final:             save model, layout and tokenizer into ``config.output_dir``.
    data_collator:          replaces ``build_collator(tokenizer, config)`` (e.g. a wrapper of it).
    """
    import torch
    from transformers import Trainer, TrainingArguments

    from semantilm.data.tokenize import TOKEN_COLUMNS
    from semantilm.models.lm import embedding_rows

    layout = tokenizer.layout
    rows = embedding_rows(model)
    if rows != layout.vocab_size:
        raise ValueError(f"the model has {rows} embedding rows but the tokenizer's layout {layout.vocab_size}.")
    missing = [c for c in TOKEN_COLUMNS[:2] if c not in (train_dataset.column_names or [])]
    if missing:
        raise ValueError(
            f"train_dataset lacks the token columns {missing}; tokenise it with semantilm.encode_audio_dataset."
        )
    if resume_from_checkpoint is True:
        resume_from_checkpoint = last_checkpoint(config.output_dir)
        if resume_from_checkpoint is None:
            logger.info("no checkpoint in %s; starting from scratch", config.output_dir)
    elif resume_from_checkpoint and not Path(resume_from_checkpoint).is_dir():
        raise ValueError(f"resume_from_checkpoint={resume_from_checkpoint!r} is not a checkpoint folder.")

    args = TrainingArguments(
        output_dir=config.output_dir,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        max_grad_norm=config.max_grad_norm,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        dataloader_num_workers=config.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,  # the collator reads the token columns
        report_to=resolve_report_to(config.report_to),
        use_cpu=resolve_use_cpu(config.use_cpu),
        disable_tqdm=config.disable_tqdm,
    )
    collator = data_collator if data_collator is not None else build_collator(tokenizer, config)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=collator,
        callbacks=[_layout_callback(tokenizer), *(callbacks or [])],
    )
    trainer.train(resume_from_checkpoint=resume_from_checkpoint or None)
    if save_final:
        trainer.save_model(config.output_dir)  # the Trainer writes from the main process only
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(config.output_dir)
            layout.save_pretrained(config.output_dir)
    return trainer
