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
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["TrainConfig", "train_lm", "last_checkpoint", "build_collator", "resolve_report_to", "resolve_use_cpu",
           "ThroughputCallback", "peak_device_flops", "eval_loss_metrics"]

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
    on_too_long: Literal["error", "drop", "cut"] = "error"  # an example longer than max_length (pad mode): see docs/recipes.md
    packing: bool = False  # pack rows to max_length instead of padding
    caption_dropout: float = 0.1  # for classifier-free guidance
    mask_text: bool = True  # do not learn captions
    bf16: bool = False
    dataloader_num_workers: int = 0
    disable_tqdm: bool = False
    use_cpu: bool | None = None  # None: the CPU when no GPU is visible (then DDP runs over gloo)
    report_to: str = "none"  # "none", "auto" (tensorboard when installed), or a transformers integration
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30 % more compute
    group_by_length: bool = False  # batch rows of similar token length together (less padding)
    eval_steps: int | None = None  # evaluate every N steps when there is an eval set (None: every save_steps)
    eval_batch_size: int | None = None  # per device (None: batch_size)
    peak_tflops: float | None = None  # per device, for MFU (None: looked up by GPU name; n/a on CPU)
    throughput_log_step: int = 5  # log tokens/s and MFU early, at this step (and at every logging step)

    def __post_init__(self) -> None:
        from plumbing.config_file import check_field_types

        check_field_types(self)
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps",
                     "throughput_log_step", "eval_steps", "eval_batch_size"):
            value = getattr(self, name)
            if (value is not None or name not in ("eval_steps", "eval_batch_size")) and (
                    not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if self.peak_tflops is not None and self.peak_tflops <= 0:
            raise ValueError(f"peak_tflops must be positive or null, got {self.peak_tflops}.")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1], got {self.caption_dropout}.")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> TrainConfig:
        """A YAML file of TrainConfig keys (every key and value checked, errors naming the file), then ``overrides``."""
        from plumbing.config_file import load_config

        config = load_config(cls, path)
        return dataclasses.replace(config, **overrides) if overrides else config


def _layout_callback(tokenizer: AudioTextTokenizer) -> Any:
    from transformers import TrainerCallback

    class SaveLayoutCallback(TrainerCallback):
        """Writes ``semantilm_config.json`` and the text tokenizer into every checkpoint, and gives its
        files the permissions of the umask."""

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
            if state.is_world_process_zero:
                from plumbing.io import follow_umask

                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                tokenizer.save_pretrained(folder)
                tokenizer.layout.save_pretrained(folder)
                follow_umask(folder)  # the Trainer's safetensors come 0600 through a private temporary file
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


# Dense bf16 tensor-core peak of one device, TFLOP/s, by a piece of its name (first match wins).
PEAK_BF16_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("A100", 312.0),
                    ("L40S", 362.0), ("L4", 121.0), ("A6000", 155.0), ("V100", 125.0), ("MI300X", 1307.0))


def peak_device_flops(peak_tflops: float | None = None) -> float | None:
    """Peak FLOP/s of this process's device: ``peak_tflops`` when given, else the table entry
    of the visible GPU's name, else None (CPU or an unknown GPU: MFU is n/a)."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((tf * 1e12 for key, tf in PEAK_BF16_TFLOPS if key in name), None)


class ThroughputCallback:
    """Adds ``tokens_per_s`` (input tokens of all processes per second) and ``mfu`` (model FLOPs
    utilisation, ``6 * params * tokens/s / (peak FLOP/s * processes)``) to the Trainer's logs,
    measured since the previous log; the first step (warm-up) is not timed. Forces one early log
    at ``log_step`` so that the speed of a long run is known after a few steps."""

    def __init__(self, num_params: int, peak_flops: float | None, num_devices: int = 1, log_step: int = 5):
        self.num_params, self.peak_flops, self.num_devices, self.log_step = num_params, peak_flops, num_devices, log_step
        self.mark: tuple[float, int] | None = None
        self.last: dict[str, float | None] = {}

    def as_callback(self) -> Any:
        from transformers import TrainerCallback

        outer = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
                return outer.on_step_end(state, control)

            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
                outer.on_log(state, logs)
                return control

        return _Callback()

    def on_step_end(self, state: Any, control: Any) -> Any:
        import time

        if self.mark is None:  # after the warm-up step
            self.mark = (time.perf_counter(), int(state.num_input_tokens_seen))
        elif state.global_step == self.log_step:
            control.should_log = True
        return control

    def on_log(self, state: Any, logs: dict[str, Any] | None) -> None:
        import time

        if logs is None or "loss" not in logs or self.mark is None:
            return
        now, tokens = time.perf_counter(), int(state.num_input_tokens_seen)
        elapsed = now - self.mark[0]
        if elapsed <= 0 or tokens <= self.mark[1]:
            return
        rate = (tokens - self.mark[1]) / elapsed
        mfu = 6.0 * self.num_params * rate / (self.peak_flops * self.num_devices) if self.peak_flops else None
        self.last = {"tokens_per_s": rate, "mfu": mfu}
        self.mark = (now, tokens)
        extra = {"tokens_per_s": round(rate, 1), **({"mfu": round(mfu, 4)} if mfu is not None else {})}
        logs.update(extra)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)
        if state.is_world_process_zero:
            shown = f"{100 * mfu:.1f} %" if mfu is not None else "n/a"
            logger.info("step %d: %.0f tokens/s, MFU %s", state.global_step, rate, shown)


def eval_loss_metrics(layout: Any) -> tuple[Any, Any]:
    """``(preprocess_logits_for_metrics, compute_metrics)`` for the Trainer: each eval batch is
    reduced to its summed loss and token count per kind (``semantilm.eval.lm.token_loss_sums``),
    so no logits are kept; the metrics are the mean losses over semantic, acoustic and other
    positions (``eval_loss_semantic``, ...) and over all of them (``eval_loss_tokens``)."""
    import math

    import torch

    from semantilm.eval.lm import KINDS, token_loss_sums

    def reduce(logits: Any, labels: Any) -> Any:
        logits = logits[0] if isinstance(logits, tuple) else logits
        sums = token_loss_sums(logits, labels, layout)
        return torch.tensor([[v for k in KINDS for v in sums[k]]], dtype=torch.float64, device=logits.device)

    def compute(prediction: Any) -> dict[str, float]:
        import numpy as np

        totals = np.asarray(prediction.predictions, dtype=np.float64).reshape(-1, 2 * len(KINDS)).sum(0)
        out = {}
        for i, kind in enumerate(KINDS):
            total, count = totals[2 * i], totals[2 * i + 1]
            if count:
                out["loss_tokens" if kind == "all" else f"loss_{kind}"] = float(total / count)
        if "loss_acoustic" in out:
            out["ppl_acoustic"] = math.exp(min(out["loss_acoustic"], 50.0))
        if "loss_semantic" in out:
            out["ppl_semantic"] = math.exp(min(out["loss_semantic"], 50.0))
        return out

    return reduce, compute


def _with_lengths(dataset: Any) -> Any:
    """A ``length`` column (approximate LM tokens of a row: 2 per frame + specials) for grouping."""
    if "length" in dataset.column_names:
        return dataset
    return dataset.add_column("length", [2 * int(n) + 3 for n in dataset["num_frames"]])


def _resolve_resume(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    if resume_from_checkpoint is True:
        found = last_checkpoint(output_dir)
        if found is None:
            logger.info("no checkpoint in %s; starting from scratch", output_dir)
        return found
    if resume_from_checkpoint and not Path(resume_from_checkpoint).is_dir():
        raise ValueError(f"resume_from_checkpoint={resume_from_checkpoint!r} is not a checkpoint folder.")
    return resume_from_checkpoint or None


def _training_arguments(config: TrainConfig, evaluate: bool) -> Any:
    import torch
    from transformers import TrainingArguments

    eval_args: dict[str, Any] = {}
    if evaluate:
        eval_args = {"eval_strategy": "steps", "eval_steps": config.eval_steps or config.save_steps,
                     "per_device_eval_batch_size": config.eval_batch_size or config.batch_size}
    return TrainingArguments(
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
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        length_column_name="length",
        include_num_input_tokens_seen="non_padding",
        label_names=["labels"],
        **eval_args,
    )


def _audio_trainer_class() -> Any:
    from transformers import Trainer

    class AudioLMTrainer(Trainer):
        """Evaluates with ``eval_collator`` (no caption dropout) instead of the training collator."""

        eval_collator: Any = None

        def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
            train_collator = self.data_collator
            self.data_collator = self.eval_collator or train_collator
            try:
                return super().get_eval_dataloader(eval_dataset)
            finally:
                self.data_collator = train_collator

    return AudioLMTrainer


def _save_final(trainer: Any, tokenizer: AudioTextTokenizer, output_dir: str) -> None:
    if getattr(trainer, "is_fsdp_enabled", False):  # one gathered safetensors file, not shards
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(output_dir)  # the Trainer writes from the main process only
    if trainer.is_world_process_zero():
        from plumbing.io import follow_umask

        tokenizer.save_pretrained(output_dir)
        tokenizer.layout.save_pretrained(output_dir)
        follow_umask(output_dir)


def train_lm(
    model: Any,
    tokenizer: AudioTextTokenizer,
    train_dataset: Dataset,
    config: TrainConfig,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list[Any] | None = None,
    save_final: bool = True,
    data_collator: Any = None,
    eval_dataset: Dataset | None = None,
) -> Any:
    """Train ``model`` on token rows (``load_token_dataset`` of a token folder) and return the Trainer.

    resume_from_checkpoint: a ``checkpoint-N`` folder, or True for the newest one in
                            ``config.output_dir``.
    save_final:             save model, layout and tokenizer into ``config.output_dir``.
    data_collator:          replaces ``build_collator(tokenizer, config)`` (e.g. a wrapper of it).
    eval_dataset:           token rows evaluated every ``config.eval_steps`` steps: ``eval_loss``
                            and its semantic / acoustic parts (``eval_loss_semantic``, ...).
    Every log also has ``tokens_per_s`` (and ``mfu`` on a GPU of known peak): ``ThroughputCallback``.
    """
    from semantilm.models.hf_tokenizer import generation_config_for
    from semantilm.models.lm import embedding_rows
    from semantilm.training.data_checks import check_training_data

    layout = tokenizer.layout
    rows = embedding_rows(model)
    if rows != layout.vocab_size:
        raise ValueError(f"the model has {rows} embedding rows but the tokenizer's layout {layout.vocab_size}.")
    train_dataset, eval_dataset = check_training_data(tokenizer, config, train_dataset, eval_dataset)
    resume = _resolve_resume(resume_from_checkpoint, config.output_dir)
    if config.group_by_length:
        train_dataset = _with_lengths(train_dataset)
        eval_dataset = _with_lengths(eval_dataset) if eval_dataset is not None else None
    bos = tokenizer.bos_id if tokenizer.add_bos else None
    model.generation_config = generation_config_for(layout, bos)  # saved in every checkpoint
    args = _training_arguments(config, evaluate=eval_dataset is not None)
    reduce, compute = eval_loss_metrics(layout) if eval_dataset is not None else (None, None)
    trainer = _audio_trainer_class()(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        data_collator=data_collator if data_collator is not None else build_collator(tokenizer, config),
        callbacks=[_layout_callback(tokenizer), *(callbacks or [])],
        preprocess_logits_for_metrics=reduce, compute_metrics=compute,
    )
    trainer.eval_collator = build_collator(tokenizer, dataclasses.replace(config, caption_dropout=0.0))
    throughput = ThroughputCallback(sum(p.numel() for p in model.parameters()), peak_device_flops(config.peak_tflops),
                                    args.world_size, config.throughput_log_step)
    trainer.callback_handler.callbacks.insert(0, throughput.as_callback())  # before the reporters read the logs
    trainer.throughput = throughput
    trainer.train(resume_from_checkpoint=resume)
    if save_final:
        _save_final(trainer, tokenizer, config.output_dir)
    return trainer
