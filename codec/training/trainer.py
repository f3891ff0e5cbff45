"""Accelerate loop that trains :class:`codec.training.losses.CodecTrainingStep`.

A plain loop instead of ``transformers.Trainer``: the batch is ``(waves, lengths)`` rather than
a dict of model inputs, the loss object is a :class:`CodecLosses`, and part of the state (the
EMA codebook of the acoustic quantiser and its statistics) is changed by ``forward`` itself
rather than by the optimiser. Both fit badly in the Trainer's model/inputs/loss contract; the
loop below is short and owns all of it.

What it does, in every process of ``accelerate launch`` (or in-process):

* mixed precision and gradient accumulation come from the :class:`accelerate.Accelerator`
  (``mixed_precision``, ``gradient_accumulation_steps``); the optimiser (AdamW, constant LR after
  a linear warm-up) sees only ``trainable_parameters()`` (LSTM, projection, UNet), so AudioMAE,
  the semantic centroids, the VAE and the vocoder never get optimiser state;
* data: one window per clip per epoch (:mod:`codec.training.windows`), order and offsets drawn
  from (seed, epoch); the noise, timesteps, CFG drop and posterior draw of each micro-batch come
  from a generator seeded by (seed, micro-batch, process) - so the run is a function of the
  step counter and the saved state, and resuming is exact;
* every ``save_steps`` optimiser steps and at the end: ``accelerator.save_state`` into
  ``<output_dir>/checkpoints/checkpoint-N`` (model incl. the EMA-VQ buffers, optimiser, scheduler,
  RNG states, step counter) plus ``checkpoint-N/codec`` written by ``save_pretrained``; the final
  codec goes to ``<output_dir>/codec``. A run resumes from the newest complete checkpoint.
* tqdm progress on the main process; the averaged loss dict is logged with :mod:`logging` and,
  when tensorboard is installed, through the Accelerator's tensorboard tracker.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from .losses import CodecTrainingStep
from .windows import ClipWindows, EpochWindows, collate_windows

__all__ = ["CodecTrainArgs", "CodecTrainResult", "train_codec", "latest_checkpoint", "CHECKPOINT_DONE"]

logger = logging.getLogger(__name__)

CHECKPOINT_DONE = "checkpoint_complete"  # written last into a checkpoint folder


@dataclass
class CodecTrainArgs:
    """How to train (the ``train`` section of a codec recipe config)."""

    output_dir: str = "outputs/codec/run"
    window_seconds: float = 10.24  # training window (at most the codec's segment)
    batch_size: int = 8  # windows per process and micro-batch
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1.0e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0  # null: no clipping
    max_steps: int = 1000  # optimiser steps
    save_steps: int = 500
    logging_steps: int = 10
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    use_cpu: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "gradient_accumulation_steps", "max_steps", "save_steps", "logging_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")


@dataclass
class CodecTrainResult:
    """output_dir; global_step: optimiser steps done (over all runs); history: (step, averaged
    loss dict) of the steps this run did; codec_dir: the final ``save_pretrained`` folder."""

    output_dir: Path
    global_step: int
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    codec_dir: Path | None = None


class _StepCounter:
    """Optimiser steps done; checkpointed with ``register_for_checkpointing``."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """Newest complete ``checkpoints/checkpoint-N`` folder under ``output_dir``, if any."""
    root = Path(output_dir) / "checkpoints"
    done = [p for p in root.glob("checkpoint-*") if (p / CHECKPOINT_DONE).is_file() and p.name[11:].isdigit()]
    return max(done, key=lambda p: int(p.name[11:]), default=None)


def _micro_batch_seed(seed: int, micro: int, rank: int) -> int:
    return (seed * 1_000_003 + micro * 1_009 + rank) % (2**63)


def _save(accelerator, model, output_dir: Path, step: int) -> Path:  # noqa: ANN001 - accelerate objects
    folder = output_dir / "checkpoints" / f"checkpoint-{step}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).codec.save_pretrained(folder / "codec")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (folder / CHECKPOINT_DONE).write_text(f"{step}\n")
    logger.info("saved %s", folder)
    return folder


def train_codec(training_step: CodecTrainingStep, windows: ClipWindows, args: CodecTrainArgs, *,
                resume: bool = True) -> CodecTrainResult:
    """Train ``training_step`` for ``args.max_steps`` optimiser steps (see the module docstring).

    windows: the corpus and window length (``windows.window_samples`` must fit the codec's segment).
    resume: continue from the newest complete checkpoint in ``args.output_dir`` when there is one.
    """
    from accelerate import Accelerator
    from accelerate.data_loader import prepare_data_loader
    from accelerate.utils import GradientAccumulationPlugin, set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    seg = training_step.codec.config.segment_samples
    if windows.window_samples > seg:
        raise ValueError(f"window of {windows.window_samples} samples exceeds the codec's segment of {seg}.")
    output_dir = Path(args.output_dir)
    if args.mixed_precision != "no" and (args.use_cpu or not torch.cuda.is_available()):
        # CPU autocast runs the acoustic LSTM through oneDNN, which rejects bf16 LSTMs on many CPUs.
        raise ValueError(f"train.mixed_precision={args.mixed_precision!r} needs a GPU; use 'no' on the CPU.")
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        cpu=args.use_cpu,
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False),
        log_with="tensorboard" if tensorboard else None,
        project_dir=str(output_dir / "logs"),
    )
    set_seed(args.seed)
    per_step = args.batch_size * accelerator.num_processes
    if len(windows) < per_step:
        raise ValueError(f"the corpus has {len(windows)} clips; one batch over all processes needs {per_step}.")
    if tensorboard:
        accelerator.init_trackers("codec")

    params = list(training_step.trainable_parameters())
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    warmup = args.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    counter = _StepCounter()
    model, optimizer = accelerator.prepare(training_step, optimizer)
    accelerator.register_for_checkpointing(scheduler, counter)  # stepped once per optimiser step, by us

    if resume and (last := latest_checkpoint(output_dir)) is not None:
        accelerator.load_state(str(last))
        logger.info("resumed from %s at step %d", last, counter.step)

    def loader(epoch: int):
        dl = DataLoader(EpochWindows(windows, epoch), batch_size=args.batch_size, shuffle=False,
                        drop_last=True, collate_fn=collate_windows)
        # The module-level function, not Accelerator.prepare_data_loader: that one registers every
        # epoch's loader with the Accelerator, and save_state would then write a sampler file for each.
        return prepare_data_loader(dl, device=accelerator.device, num_processes=accelerator.num_processes,
                                   process_index=accelerator.process_index, put_on_device=True, rng_types=[])

    per_epoch = len(windows) // per_step
    accum = args.gradient_accumulation_steps
    micro = counter.step * accum
    result = CodecTrainResult(output_dir, counter.step)
    sums: dict[str, float] = {}
    progress = tqdm(total=args.max_steps, initial=counter.step, disable=not accelerator.is_main_process,
                    desc="codec")
    model.train()
    while counter.step < args.max_steps:
        epoch, skip = divmod(micro, per_epoch)
        batches = loader(epoch)
        if skip:
            batches = accelerator.skip_first_batches(batches, skip)
        for waves, lengths in batches:
            generator = torch.Generator(device=waves.device)
            generator.manual_seed(_micro_batch_seed(args.seed, micro, accelerator.process_index))
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    losses = model(waves, lengths, generator=generator)
                accelerator.backward(losses.total)
                if accelerator.sync_gradients and args.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            micro += 1
            for k, v in losses.as_dict().items():
                sums[k] = sums.get(k, 0.0) + v / accum
            if not accelerator.sync_gradients:
                continue
            counter.step += 1
            logs, sums = {**sums, "lr": scheduler.get_last_lr()[0]}, {}
            result.history.append((counter.step, logs))
            progress.update(1)
            progress.set_postfix(loss=f"{logs['loss']:.4f}")
            if tensorboard:
                accelerator.log(logs, step=counter.step)
            if counter.step % args.logging_steps == 0:
                logger.info("step %d: %s", counter.step, {k: round(v, 5) for k, v in logs.items()})
            if counter.step % args.save_steps == 0 or counter.step == args.max_steps:
                _save(accelerator, model, output_dir, counter.step)
            if counter.step >= args.max_steps:
                break
    progress.close()
    result.global_step = counter.step
    if latest_checkpoint(output_dir) is None or int(latest_checkpoint(output_dir).name[11:]) != counter.step:
        _save(accelerator, model, output_dir, counter.step)  # e.g. resumed with max_steps already reached
    codec_dir = output_dir / "codec"
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).codec.save_pretrained(codec_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    result.codec_dir = codec_dir
    return result

