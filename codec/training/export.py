"""Export a trained codec compactly (``semantilm export-codec``) with a ``TRAINING.md`` that
summarises the stages that trained it.

The export is a ``save_pretrained`` folder whose floating tensors are stored in float16 (loading
casts them back to float32), so the tiny codec fits in the package (``codec/pretrained/tiny``).
Each stage's summary comes from its output dir: ``history.jsonl`` (written by
:func:`codec.training.trainer.train_stage` and the semantic stage: step, wall time, losses) and
``recipe.yaml`` (the stage); a stage dir without a history reports only the step of its newest
complete checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StageSummary", "summarize_stage", "training_notes", "export_codec"]

LAST_STEPS = 50  # final losses: the mean over this many last logged steps (k-means: the last epoch)


@dataclass
class StageSummary:
    """One training stage as reported in ``TRAINING.md``."""

    output_dir: str
    stage: str  # decoder / vae / vocoder / semantic ("?" when its recipe.yaml is missing)
    steps: int | None = None  # optimiser steps (semantic: k-means epochs)
    wall_s: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    source: str = "history.jsonl"  # where the numbers came from


def summarize_stage(output_dir: str | Path, last: int = LAST_STEPS) -> StageSummary:
    """The summary of a finished (or running) stage from what it wrote into ``output_dir``."""
    import yaml

    from codec.training.history import latest_checkpoint, read_history

    out = Path(output_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"stage output dir {str(out)!r} does not exist; run that stage first.")
    recipe = out / "recipe.yaml"
    stage = "?"
    if recipe.is_file():
        data = yaml.safe_load(recipe.read_text()) or {}
        stage = str(data.get("stage", "decoder")) if isinstance(data, dict) else "?"
    summary = StageSummary(str(out), stage)
    history = read_history(out)
    if history:
        tail = history[-1:] if stage == "semantic" else history[-last:]
        keys = [k for k in tail[-1] if k not in ("step", "wall_s", "lr")]
        summary.steps, summary.wall_s = int(history[-1]["step"]), history[-1].get("wall_s")
        summary.losses = {k: sum(r[k] for r in tail if k in r) / sum(k in r for r in tail) for k in keys}
        return summary
    checkpoint = latest_checkpoint(out)
    summary.steps = int(checkpoint.name.split("-")[-1]) if checkpoint is not None else None
    summary.source = "checkpoints"
    return summary


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def training_notes(config, weights: Path, dtype: str, source: Path, stages: Sequence[StageSummary],  # noqa: ANN001
                   command: str | None = None) -> str:
    """The ``TRAINING.md`` text of an exported codec (``config``: its SemantiCodecConfig)."""
    size_mb = weights.stat().st_size / 1e6
    lines = [
        f"# Codec `{config.name}`",
        "",
        f"{config.token_rate} tokens/s ({config.frame_rate:g} frames/s), semantic vocabulary "
        f"{config.semantic_codebook_size}, acoustic vocabulary {config.acoustic_codebook_size}, "
        f"{config.sample_rate} Hz, {config.segment_samples / config.sample_rate:g} s segments.",
        f"Weights: `{weights.name}`, {size_mb:.2f} MB, tensors in {dtype} (loading casts them to float32); "
        f"exported from `{source}` by `semantilm export-codec`.",
        "",
    ]
    if command:
        lines += ["Reproduce:", "", f"    {command}", ""]
    if not stages:
        lines += ["Training log: not recorded (export with `--stages <stage output dirs>`).", ""]
        return "\n".join(lines)
    lines += [f"| stage | output | steps | wall time | final losses (mean of the last {LAST_STEPS} steps; "
              "semantic: k-means error of the last epoch) |", "|---|---|---|---|---|"]
    for s in stages:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in s.losses.items()) or "not recorded"
        steps = "?" if s.steps is None else str(s.steps)
        note = "" if s.source == "history.jsonl" else f" (from {s.source})"
        lines.append(f"| {s.stage} | `{s.output_dir}` | {steps} | {_duration(s.wall_s)} | {losses}{note} |")
    total = [s.wall_s for s in stages]
    if all(t is not None for t in total):
        lines += ["", f"Total wall time: {_duration(sum(total))}."]
    return "\n".join(lines) + "\n"


def export_codec(source: str | Path, out: str | Path, *, dtype: str = "float16", name: str | None = None,
                 stages: str | Path | Sequence[str | Path] = (), command: str | None = None,
                 max_mb: float | None = None, vocoder_from: str | Path | None = None,
                 cfg_scale: float | None = None, overwrite: bool = False) -> Path:
    """Write ``out`` = the codec of ``source`` (a ``save_pretrained`` folder or a stage output dir)
    with tensors in ``dtype`` + ``TRAINING.md`` (summaries of ``stages``: one stage output dir or a list). ``max_mb``: refuse
    (writing nothing) when the weights are larger. ``vocoder_from``: a vocoder stage's output
    (or codec folder) whose vocoder replaces the source's (the vocoder trains independently of
    the decoder stage, which never runs it). ``cfg_scale``: the variant's default guidance scale
    (``config.cfg_scale``, what ``decode`` uses when not told). ``overwrite``: replace an existing
    non-empty ``out``, refused otherwise. The export is written beside ``out`` and moved into place
    whole, so a failed export leaves ``out`` as it was. Returns ``out``."""
    import tempfile

    from codec.checkpoints import TRAINING_NOTES, WEIGHTS_NAME, load_native
    from codec.student import STUDENT_NAME
    from codec.training.parts import resolve_codec_folder
    from plumbing.io import check_output_path, follow_umask, path_list

    folder = resolve_codec_folder(source)
    stages = path_list(stages, "stages") if stages else []  # one stage dir or a list of them
    summaries = [summarize_stage(s) for s in stages]  # before writing anything: a bad dir fails early
    check_output_path(out, "folder", "export folder")
    out = Path(out)
    if out.resolve() == folder.resolve():
        raise ValueError(f"the export would overwrite its source {str(folder)!r}; choose another folder.")
    if cfg_scale is not None and not cfg_scale >= 1.0:
        raise ValueError(f"cfg_scale must be >= 1 (1: no guidance), got {cfg_scale}.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"export folder {str(out)!r} already holds files; give a new folder, or pass "
                              "--overwrite (overwrite=True) to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.export-") as staging:
        written = _export_into(folder, Path(staging) / "codec", dtype, name, vocoder_from, cfg_scale, max_mb)
        config, _ = load_native(written)
        text = training_notes(config, written / WEIGHTS_NAME, dtype, folder, summaries, command)
        student = written / STUDENT_NAME
        if student.is_file():
            text += (f"\nDistilled decoder: `{STUDENT_NAME}`, {student.stat().st_size / 1e6:.2f} MB in {dtype} "
                     "(`DecodeSettings(sampler=\"distilled\", steps=k)`; see docs/codec_distillation.md).\n")
        (written / TRAINING_NOTES).write_text(text)
        follow_umask(written / WEIGHTS_NAME, written / "config.json", written / TRAINING_NOTES,
                     *([student] if student.is_file() else []))  # as every file the toolkit writes
        _move_into_place(written, out)
    return out


def _move_into_place(written: Path, out: Path) -> None:
    """Replace ``out`` by the finished folder ``written`` (same file system): the old files leave only
    once the new ones are complete."""
    import shutil

    if out.exists():
        retired = written.parent / "replaced"
        out.rename(retired)
        written.rename(out)
        shutil.rmtree(retired)
    else:
        written.rename(out)


def _export_into(folder: Path, out: Path, dtype: str, name: str | None, vocoder_from: str | Path | None,
                 cfg_scale: float | None, max_mb: float | None) -> Path:
    """The weights and config of ``export_codec`` written into the new folder ``out``."""
    import tempfile

    from codec.checkpoints import EXPORT_DTYPES, export_native
    from codec.student import STUDENT_NAME, export_student

    with tempfile.TemporaryDirectory() as tmp:
        weights_source = folder
        if vocoder_from is not None or cfg_scale is not None:
            from codec.model import SemantiCodec
            from codec.training.parts import adopt_vocoder, replace_config

            codec = SemantiCodec.from_pretrained(folder)
            if vocoder_from is not None:
                adopt_vocoder(codec, vocoder_from)  # its sizes too: the vocoder stage may use others
            if cfg_scale is not None:
                replace_config(codec, cfg_scale=float(cfg_scale))
            codec.save_pretrained(tmp)
            weights_source = Path(tmp)
        weights = export_native(weights_source, out, dtype=dtype, name=name)
        export_student(weights_source, out, EXPORT_DTYPES[dtype])  # the distilled decoder, if the codec has one
    student = out / STUDENT_NAME
    size_mb = (weights.stat().st_size + (student.stat().st_size if student.is_file() else 0)) / 1e6
    if max_mb is not None and size_mb > max_mb:
        raise ValueError(f"the exported weights are {size_mb:.2f} MB, more than --max-mb {max_mb:g}; "
                         "export a smaller codec (or a lower-precision dtype).")
    return out
