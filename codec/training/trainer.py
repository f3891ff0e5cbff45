"""One Accelerate loop for every codec training stage (decoder, VAE, vocoder).

A plain loop instead of ``transformers.Trainer``: the batch is ``(waves, lengths)`` rather than
a dict of model inputs, the losses are small dataclasses, part of the state (the EMA codebook of
the acoustic quantiser) is changed by ``forward`` itself, and the vocoder stage alternates two
optimisers (generator, discriminators). All of that fits badly in the Trainer's
model/inputs/loss contract; the loop below is short and owns all of it.

A stage is an ``nn.Module`` following :class:`TrainingStage`: ``codec`` (what gets
``save_pretrained``), ``stage_name``, ``phases()`` (one ``(name, parameters)`` per optimiser,
in update order) and ``forward(waves, lengths, generator=, phase=, carry=)`` returning losses
with ``total`` and ``as_dict()`` (and optionally ``carry``: tensors handed to the next phase of
the same micro-batch, e.g. the generator's detached output for the discriminator step). An
optional ``on_train_end(windows)`` runs in every process before the final checkpoint (the VAE
stage sets the latent scale there).

What it does, in every process of ``accelerate launch`` (or in-process):

* mixed precision and gradient accumulation come from the :class:`accelerate.Accelerator`
  (``mixed_precision``, ``gradient_accumulation_steps``); one AdamW per phase (constant LR after
  a linear warm-up) sees only that phase's parameters, so frozen parts never get optimiser state;
  with several phases DDP runs with ``find_unused_parameters`` (each phase leaves the other
  phase's parameters out of its graph);
* data: one window per clip per epoch (:mod:`codec.training.windows`), order and offsets drawn
  from (seed, epoch); the randomness of each micro-batch comes from a generator seeded by
  (seed, micro-batch, process) - so the run is a function of the step counter and the saved
  state, and resuming is exact;
* every ``save_steps`` optimiser steps and at the end: ``accelerator.save_state`` into
  ``<output_dir>/checkpoints/checkpoint-N`` (model incl. buffers and discriminators, every
  optimiser, every scheduler, RNG states, step counter) plus ``checkpoint-N/codec`` written by
  ``save_pretrained``; the final codec goes to ``<output_dir>/codec``. A run resumes from the
  newest complete checkpoint.
* tqdm progress on the main process; the averaged loss dict is logged with :mod:`logging` and,
  when tensorboard is installed, through the Accelerator's tensorboard tracker; every step's
  losses also go to ``<output_dir>/history.jsonl`` (:func:`codec.training.history.read_history`), with the wall time.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from codec.training.history import CHECKPOINT_DONE, HistoryLog, latest_checkpoint
from codec.training.windows import ClipWindows, EpochWindows, collate_windows
from plumbing.config_file import check_field_types

__all__ = [
    "CodecTrainArgs",
    "CodecTrainResult",
    "TrainingStage",
    "train_stage",
]

logger = logging.getLogger(__name__)

@dataclass
class CodecTrainArgs:
    """How to train (the ``train`` section of a codec recipe config)."""

    output_dir: str = "outputs/codec/run"
    window_seconds: float = 10.24  # training window (at most the codec's segment)
    # share of windows cut short and zero-padded (codec.training.windows.ClipWindows ``partial``)
    partial_windows: float = 0.0
    batch_size: int = 8  # windows per process and micro-batch
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1.0e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)  # HiFi-GAN uses (0.8, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    # The last decay_steps optimiser steps lower the LR linearly towards 0 (warm-up, constant,
    # decay; more than max_steps: the ramp starts below 1, e.g. in a shortened smoke run); 0:
    # constant after the warm-up. Only steps past max_steps - decay_steps change, so a run resumed
    # from an earlier checkpoint with a decay added equals one started with it.
    decay_steps: int = 0
    max_grad_norm: float | None = 1.0  # null: no clipping
    max_steps: int = 1000  # optimiser steps
    save_steps: int = 500
    logging_steps: int = 10
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    use_cpu: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("batch_size", "gradient_accumulation_steps", "max_steps", "save_steps", "logging_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}.")
        if not 0.0 <= self.partial_windows <= 1.0:
            raise ValueError(f"partial_windows must be a share between 0 and 1, got {self.partial_windows}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.decay_steps < 0:
            raise ValueError(f"decay_steps must be >= 0, got {self.decay_steps}.")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}.")


@dataclass
class CodecTrainResult:
    """output_dir; global_step: optimiser steps done (over all runs); history: (step, averaged
    loss dict) of the steps this run did; codec_dir: the final ``save_pretrained`` folder."""

    output_dir: Path
    global_step: int
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    codec_dir: Path | None = None


class TrainingStage(Protocol):
    """What :func:`train_stage` needs from a stage module (see the module docstring)."""

    stage_name: str
    codec: Any  # SemantiCodec

    def phases(self) -> list[tuple[str, list[nn.Parameter]]]: ...

    def __call__(self, waves: torch.Tensor, lengths: torch.Tensor, *, generator: torch.Generator,
                 phase: str, carry: dict[str, torch.Tensor]) -> Any: ...


class _StepCounter:
    """Optimiser steps done; checkpointed with ``register_for_checkpointing``."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


def _micro_batch_seed(seed: int, micro: int, rank: int) -> int:
    return (seed * 1_000_003 + micro * 1_009 + rank) % (2**63)


def _save(accelerator, model, output_dir: Path, step: int) -> Path:  # noqa: ANN001 - accelerate objects
    folder = output_dir / "checkpoints" / f"checkpoint-{step}"
    if accelerator.is_main_process:
        (folder / CHECKPOINT_DONE).unlink(missing_ok=True)  # rewritten: incomplete until the marker is back
    accelerator.wait_for_everyone()
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).codec.save_pretrained(folder / "codec")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (folder / CHECKPOINT_DONE).write_text(f"{step}\n")
    logger.info("saved %s", folder)
    return folder


def _check_stage(stage: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    if not isinstance(stage, nn.Module) or not hasattr(stage, "codec") or not callable(getattr(stage, "phases", None)):
        raise TypeError(f"stage must be an nn.Module with .codec and .phases() (a TrainingStage), got "
                        f"{type(stage).__name__}.")
    phases = [(name, list(params)) for name, params in stage.phases()]
    if not phases or any(not params for _, params in phases):
        raise ValueError(f"every phase of {type(stage).__name__} needs parameters, got "
                         f"{[(n, len(p)) for n, p in phases]}.")
    return phases


def _check_setup(stage: nn.Module, windows: ClipWindows, args: CodecTrainArgs) -> None:
    seg = stage.codec.config.segment_samples
    if windows.window_samples > seg:
        raise ValueError(f"window of {windows.window_samples} samples exceeds the codec's segment of {seg}.")
    if args.mixed_precision != "no" and (args.use_cpu or not torch.cuda.is_available()):
        # CPU autocast runs the acoustic LSTM through oneDNN, which rejects bf16 LSTMs on many CPUs.
        raise ValueError(f"train.mixed_precision={args.mixed_precision!r} needs a GPU; use 'no' on the CPU.")


def _lr_schedule(args: CodecTrainArgs) -> Callable[[int], float]:
    """LR factor after ``step`` optimiser steps: linear warm-up, constant, linear decay at the end."""
    warmup, decay, total = args.warmup_steps, args.decay_steps, args.max_steps

    def lr_factor(step: int) -> float:
        factor = min(1.0, (step + 1) / (warmup + 1))
        return factor * min(1.0, (total - step) / decay) if decay else factor

    return lr_factor


@dataclass
class _Run:
    """What the loop of :func:`train_stage` works with, once Accelerate has prepared it."""

    accelerator: Any
    model: nn.Module
    phases: list[tuple[str, list[nn.Parameter]]]
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]
    counter: _StepCounter
    tensorboard: bool


def _prepare(stage: nn.Module, phases: list[tuple[str, list[nn.Parameter]]], windows: ClipWindows,
             args: CodecTrainArgs, name: str, resume: bool) -> _Run:
    """The Accelerator, one AdamW + LambdaLR per phase, the step counter; resumed when asked."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, GradientAccumulationPlugin, set_seed

    output_dir = Path(args.output_dir)
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        cpu=args.use_cpu,
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False),
        log_with="tensorboard" if tensorboard else None,
        project_dir=str(output_dir / "logs"),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=len(phases) > 1)],
    )
    set_seed(args.seed)
    per_step = args.batch_size * accelerator.num_processes
    if len(windows) < per_step:
        raise ValueError(f"the corpus has {len(windows)} clips; one batch over all processes needs {per_step}.")
    if tensorboard:
        accelerator.init_trackers(name)
    optimizers, schedulers = [], []
    for _, params in phases:
        opt = torch.optim.AdamW(params, lr=args.learning_rate, betas=tuple(args.adam_betas),
                                weight_decay=args.weight_decay)
        optimizers.append(opt)
        schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt, _lr_schedule(args)))
    counter = _StepCounter()
    model, *optimizers = accelerator.prepare(stage, *optimizers)
    accelerator.register_for_checkpointing(*schedulers, counter)  # stepped once per optimiser step, by us
    if resume and (last := latest_checkpoint(output_dir)) is not None:
        accelerator.load_state(str(last))
        logger.info("resumed from %s at step %d", last, counter.step)
    return _Run(accelerator, model, phases, optimizers, schedulers, counter, tensorboard)


def _epoch_batches(windows: ClipWindows, args: CodecTrainArgs, accelerator: Any,
                   epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader

    dl = DataLoader(EpochWindows(windows, epoch), batch_size=args.batch_size, shuffle=False,
                    drop_last=True, collate_fn=collate_windows)
    # The module-level function, not Accelerator.prepare_data_loader: that one registers every
    # epoch's loader with the Accelerator, and save_state would then write a sampler file for each.
    return prepare_data_loader(dl, device=accelerator.device, num_processes=accelerator.num_processes,
                               process_index=accelerator.process_index, put_on_device=True, rng_types=[])


def _micro_batch(run: _Run, waves: torch.Tensor, lengths: torch.Tensor, args: CodecTrainArgs, micro: int,
                 sums: dict[str, float]) -> None:
    """Forward, backward and (at the end of an accumulation) update every phase on one micro-batch;
    adds its losses (divided by the accumulation steps) to ``sums``."""
    accelerator = run.accelerator
    generator = torch.Generator(device=waves.device)
    generator.manual_seed(_micro_batch_seed(args.seed, micro, accelerator.process_index))
    carry: dict[str, torch.Tensor] = {}
    with accelerator.accumulate(run.model):
        for (phase, params), optimizer, scheduler in zip(run.phases, run.optimizers, run.schedulers):
            with accelerator.autocast():
                losses = run.model(waves, lengths, generator=generator, phase=phase, carry=carry)
            accelerator.backward(losses.total)
            if accelerator.sync_gradients and args.max_grad_norm is not None:
                accelerator.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            carry = dict(getattr(losses, "carry", None) or {})
            for k, v in losses.as_dict().items():
                sums[k] = sums.get(k, 0.0) + v / args.gradient_accumulation_steps


def _record_step(run: _Run, args: CodecTrainArgs, logs: dict[str, float], result: CodecTrainResult,
                 history: HistoryLog, progress: Any) -> None:
    """Log one optimiser step everywhere it goes, and checkpoint every ``save_steps``."""
    step = run.counter.step
    result.history.append((step, logs))
    history.append(step, logs)
    progress.update(1)
    progress.set_postfix(loss=f"{logs['loss']:.4f}")
    if run.tensorboard:
        run.accelerator.log(logs, step=step)
    if step % args.logging_steps == 0:
        logger.info("step %d: %s", step, {k: round(v, 5) for k, v in logs.items()})
    if step % args.save_steps == 0 and step < args.max_steps:
        _save(run.accelerator, run.model, Path(args.output_dir), step)


def _train_loop(run: _Run, windows: ClipWindows, args: CodecTrainArgs, name: str, result: CodecTrainResult) -> None:
    """Micro-batches until ``args.max_steps`` optimiser steps are done."""
    from tqdm.auto import tqdm

    accelerator, counter = run.accelerator, run.counter
    per_epoch = len(windows) // (args.batch_size * accelerator.num_processes)
    micro = counter.step * args.gradient_accumulation_steps
    history = HistoryLog(args.output_dir, counter.step, enabled=accelerator.is_main_process)
    sums: dict[str, float] = {}
    progress = tqdm(total=args.max_steps, initial=counter.step, disable=not accelerator.is_main_process, desc=name)
    run.model.train()
    while counter.step < args.max_steps:
        epoch, skip = divmod(micro, per_epoch)
        batches = _epoch_batches(windows, args, accelerator, epoch)
        if skip:
            batches = accelerator.skip_first_batches(batches, skip)
        for waves, lengths in batches:
            _micro_batch(run, waves, lengths, args, micro, sums)
            micro += 1
            if not accelerator.sync_gradients:
                continue
            counter.step += 1
            logs, sums = {**sums, "lr": run.schedulers[0].get_last_lr()[0]}, {}
            _record_step(run, args, logs, result, history, progress)
            if counter.step >= args.max_steps:
                break
    progress.close()


def _finish(run: _Run, windows: ClipWindows, output_dir: Path) -> Path:
    """The final checkpoint and ``<output_dir>/codec``; returns that folder."""
    accelerator = run.accelerator
    unwrapped = accelerator.unwrap_model(run.model)
    if callable(end := getattr(unwrapped, "on_train_end", None)):
        end(windows)  # every process: it may change buffers that the final checkpoint must hold
    _save(accelerator, run.model, output_dir, run.counter.step)
    codec_dir = output_dir / "codec"
    if accelerator.is_main_process:
        unwrapped.codec.save_pretrained(codec_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return codec_dir


def train_stage(stage: nn.Module, windows: ClipWindows, args: CodecTrainArgs, *,
                resume: bool = True) -> CodecTrainResult:
    """Train ``stage`` for ``args.max_steps`` optimiser steps (see the module docstring).

    windows: the corpus and window length (``windows.window_samples`` must fit the codec's segment).
    resume: continue from the newest complete checkpoint in ``args.output_dir`` when there is one.
    """
    phases = _check_stage(stage)
    _check_setup(stage, windows, args)
    name = getattr(stage, "stage_name", "codec")
    run = _prepare(stage, phases, windows, args, name, resume)
    result = CodecTrainResult(Path(args.output_dir), run.counter.step)
    _train_loop(run, windows, args, name, result)
    result.global_step = run.counter.step
    result.codec_dir = _finish(run, windows, Path(args.output_dir))
    return result
