"""The text-to-audio recipe's optional judgement of generated audio after training (``eval.generation: true``).

The trained LM generates a clip for each caption of the first ``eval.num_captions`` rows of the eval
split (``data.eval_fraction`` or ``data.eval_dataset``); the clips are judged with
``semantilm.eval.evaluate_generation`` against those rows' own audio, their tokens decoded by the same
codec (so FAD and KL measure the LM, not the codec). The clips and their ``metadata.csv`` go to
``<output_dir>/generation_eval/``, the metrics to ``<output_dir>/generation_metrics.json`` (+ ``.csv``),
the training log (``generation_*``, tensorboard when it reports) and the recipe's result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantilm.eval.generation_settings import METRICS
from semantilm.eval.pretrained_audio_models import DEFAULT_CLAP, DEFAULT_TAGGER

__all__ = ["GENERATION_METRICS_FILE", "GENERATION_EVAL_DIR", "GenerationEvalSection", "check_generation_eval",
           "evaluate_trained_generation"]

logger = logging.getLogger(__name__)

GENERATION_METRICS_FILE = "generation_metrics.json"
GENERATION_EVAL_DIR = "generation_eval"


@dataclass
class GenerationEvalSection:
    """``eval:`` of a recipe config: judge the trained LM's audio for the captions of the eval split.

    generation:   turn it on (text_to_audio with held-out rows only).
    num_captions: eval rows whose captions are generated (the first N of the split).
    metrics / clap_model / tagger / fad_model / bootstrap: as ``semantilm eval-generation``.
    seconds:      length of each generated clip (None: the longest of the reference clips).
    guidance_scale / top_k / decode_steps / sampler / seed: generation and decoding settings.
    device:       "auto": a GPU when there is one, else the CPU.
    """

    generation: bool = False
    num_captions: int = 16
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    clap_model: str = DEFAULT_CLAP
    tagger: str = DEFAULT_TAGGER
    fad_model: str | None = None
    seconds: float | None = None
    guidance_scale: float = 3.0
    top_k: int | None = 250
    decode_steps: int | None = None
    sampler: str = "ddim"
    batch_size: int = 8
    bootstrap: int = 200
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        from plumbing.checks import check_float, check_int

        check_int(self.num_captions, "num_captions", minimum=1)
        if self.seconds is not None:
            check_float(self.seconds, "seconds", minimum=0, above=True)
        check_float(self.guidance_scale, "guidance_scale", minimum=0)
        if self.top_k is not None:
            check_int(self.top_k, "top_k", minimum=1)
        _decode_settings(self)
        self.metric_settings()  # metrics, batch_size, bootstrap and seed are checked there

    def metric_settings(self, device: str = "cpu", cache_dir: str | None = None) -> Any:
        from semantilm.eval.generation_settings import GenerationMetricsSettings

        return GenerationMetricsSettings(
            metrics=tuple(self.metrics), clap_model=self.clap_model, tagger=self.tagger, fad_model=self.fad_model,
            device=device, batch_size=self.batch_size, bootstrap=self.bootstrap, seed=self.seed, cache_dir=cache_dir,
            progress=False,
        )


def check_generation_eval(config: Any, eval_rows: Any) -> None:
    """Before training: the eval rows have captions, and the judge models are in reach (their configs
    are read), so that neither stops the run after the work."""
    from semantilm.eval.pretrained_audio_models import load_config_of

    if eval_rows is None or "caption" not in eval_rows.column_names:
        raise ValueError("eval.generation generates the captions of the eval rows, and they have none; give "
                         "data.eval_dataset a caption column (semantilm tokenize --caption-column).")
    cache_dir = config.codec.cache_dir
    settings = config.eval.metric_settings(cache_dir=cache_dir)
    if "clap" in settings.metrics or ("fad" in settings.metrics and settings.fad_model is None):
        load_config_of(settings.clap_model, "CLAP model", "eval.clap_model", cache_dir)
    if "fad" in settings.metrics and settings.fad_model is not None:
        load_config_of(settings.fad_model, "FAD embedding model", "eval.fad_model", cache_dir)
    if "kl" in settings.metrics:
        load_config_of(settings.tagger, "audio tagger", "eval.tagger", cache_dir)


def _device(setting: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if setting == "auto" else setting


def _decode_settings(section: GenerationEvalSection) -> Any:
    """How the codec decodes both the generated tokens and the reference rows."""
    from codec.sampling import DecodeSettings

    return DecodeSettings(sampler=section.sampler, **({"steps": section.decode_steps} if section.decode_steps else {}))


def _generate(config: Any, lm: Any, codec: Any, captions: list[str], seconds: float) -> Any:
    """The trained LM's clips for ``captions`` through the public ``semantilm.generate_audio`` (imported from
    its module: the package imports this one)."""
    from semantilm.generation.generate import generate_audio

    s = config.eval
    decode = _decode_settings(s)
    return generate_audio(lm.model, lm.tokenizer, codec, captions, seconds=seconds,
                                    guidance_scale=s.guidance_scale, top_k=s.top_k, batch_size=s.batch_size,
                                    seed=s.seed, decode=decode)


def _save_clips(folder: Path, out: Any, captions: list[str]) -> list[str]:
    """The generated clips as ``eval_000.wav``, ... with their ``metadata.csv``; their file names."""
    from semantilm.generation.metadata import planned_metadata, write_metadata

    names = [f"eval_{i:03d}" for i in range(len(captions))]
    out.save(folder, names, overwrite=True)
    files = [f"{name}.wav" for name in names]
    write_metadata(folder, planned_metadata(folder, files, captions))
    return files


def evaluate_trained_generation(config: Any, output_dir: Path, eval_rows: Any, trainer: Any = None) -> dict[str, float]:
    """Generate, judge and record (see the module docstring); returns the logged numbers ``generation_*``."""
    from semantilm.eval.clip_sources import TokenDecoding, TokenRowClips, WaveformClips
    from semantilm.eval.generation_metrics import evaluate_generation
    from semantilm.models.hub import load_codec_reference
    from semantilm.models.lm import load_lm

    s = config.eval
    device = _device(s.device)
    rows = eval_rows.select(range(min(s.num_captions, len(eval_rows))))
    captions = [str(c or "") for c in rows["caption"]]
    codec = load_codec_reference(output_dir).load(device=device, cache_dir=config.codec.cache_dir, decoder=True)
    lm = load_lm(output_dir)
    lm.model.to(device).eval()
    if s.seconds is not None:
        seconds = s.seconds
    elif "duration" in rows.column_names:
        seconds = max(float(d) for d in rows["duration"])
    else:
        seconds = max(int(n) for n in rows["num_frames"]) / lm.layout.frame_rate
    out = _generate(config, lm, codec, captions, seconds)
    files = _save_clips(output_dir / GENERATION_EVAL_DIR, out, captions)
    generated = WaveformClips(files, captions, out.unbatch(), out.sample_rate,
                              f"{len(files)} clips generated for the eval captions ({GENERATION_EVAL_DIR}/)")
    decoding = TokenDecoding(device=device, decode=_decode_settings(s), seed=s.seed, batch_size=s.batch_size)
    reference = TokenRowClips(rows, codec, decoding, f"the {len(rows)} eval rows, their tokens decoded")
    result = evaluate_generation(generated, reference, s.metric_settings(device, config.codec.cache_dir))
    result.save(output_dir / GENERATION_METRICS_FILE, overwrite=True)
    values = {f"generation_{k}": v for k, v in result.log_values().items()}
    logger.info("generated audio for %d eval captions, judged against their reference clips:\n%s", len(files),
                result.table())
    if trainer is not None:
        trainer.log(dict(values))  # the Trainer adds epoch and step to what it is given
    return values
