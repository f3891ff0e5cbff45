"""``semantilm demo``: the whole idea, offline, in a few minutes on a laptop CPU.

1. make a small captioned sound set: steady sine tones, each captioned in one of four phrasings
   ("a steady sine tone at 300 Hz", "a pure tone of 300 Hz", ...); one (frequency, phrasing) pair
   per frequency is held out, so its caption is a prompt the LM never saw, while the LM still
   hears that frequency under the other three phrasings and that phrasing with other frequencies;
2. tokenise it with a codec (default: the embedded tiny trained SemantiCodec, ``tiny``);
3. train a tiny text-to-audio LM on the tokens (the text-to-audio recipe, from scratch);
4. generate audio for the held-out captions, prompts the LM never saw (``takes`` sampled clips
   each), and decode it;
5. write one WAV and one spectrogram PNG per clip, the loss curve, ``report.md`` and
   ``report.json`` (per clip: the frequency asked for and the one measured).

Everything runs through the public pieces (:func:`semantilm.training.recipes.run_recipe`,
:func:`semantilm.generate_audio`, :func:`semantilm.eval.adherence.prompt_adherence`), so the demo is
also a worked example of them.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plumbing.io import atomic_write

__all__ = ["DemoConfig", "DemoResult", "demo_captions", "demo_decode_settings", "build_demo_dataset", "run_demo"]

logger = logging.getLogger(__name__)

# The caption phrasings: four, so that no phrasing goes with one set of frequencies only. Each
# names a "tone" (what semantilm.eval.adherence reads) and ends in "<Hz> Hz", so the number sits at the
# same distance from the audio in all of them. Every clip has the synthetic set's peak level
# (0.5), the level the tiny codec was trained on.
PHRASINGS = {
    "steady": "a steady sine tone at {hz:.0f} Hz",
    "pure": "a pure tone of {hz:.0f} Hz",
    "clear": "a clear, soft tone: {hz:.0f} Hz",
    "single": "one single tone, {hz:.0f} Hz",
}
PEAK = 0.5
# Multiples of the codec's vocoder frame rate (100 Hz at hop 160): for a steady mel a HiFi-GAN
# vocoder can only emit harmonics of it (docs/codec_training.md, "Vocoder stage").
FREQUENCIES = (200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0)
MARKER = ".semantilm-demo.json"  # marks an output folder as a demo's: a later demo may write into it


@dataclass
class DemoConfig:
    """What the demo makes and how long it trains (defaults: under 2 minutes on 2 CPU cores)."""

    output_dir: str = "outputs/demo"  # an empty or new folder, or an earlier demo's (see ``overwrite``)
    overwrite: bool = False  # also write into a non-empty output_dir that is not an earlier demo's
    codec: str = "tiny"  # "tiny" (embedded, trained), "tiny-random", a folder or a hub repo
    frequencies: tuple[float, ...] = FREQUENCIES  # Hz of the tones
    clips_per_caption: int = 8  # training clips per (frequency, phrasing), each with its own phase
    seconds: float = 1.0  # clip length (training and generation)
    train_steps: int = 800
    batch_size: int = 16
    learning_rate: float = 2.0e-3
    lm_size: str = "mini"  # a shipped size (configs/lm/<lm_size>.yaml) or a path to a size YAML
    # Sampling. A steady tone's tokens have one right answer per frame: sampling wider (top_k 8)
    # or guiding harder (3 and up) lets the tiny LM wander to a neighbouring tone's tokens; top_k 2
    # with guidance 2 got 57 of 64 unseen-prompt generations right over seeds 1-4 (6 of the 7
    # misses are 900 Hz, which the codec alone decodes at 800 Hz too), against 49 with 3.0 / 8
    # (the "demo prompt adherence" study in the git history of benchmarks/RESULTS.md).
    guidance_scale: float = 2.0
    top_k: int = 2
    # The codec's decoder: "auto" takes its distilled decoder (4 steps) when it has one, as the
    # embedded tiny codec does, else DPM-Solver++ (25 steps); or a name of codec.sampling.DECODE_SAMPLERS.
    decode_sampler: str = "auto"
    decode_steps: int | None = None  # None: 4 distilled, 25 otherwise
    # Clips sampled per unseen prompt; the pitch accuracy counts them all, so that one unlucky
    # sample moves it by 1/16 instead of 1/8.
    takes: int = 2
    seed: int = 0
    held_out: list[tuple[float, str]] = field(default_factory=list)  # (Hz, phrasing); empty: one per frequency, in turn

    def __post_init__(self) -> None:
        if not self.frequencies or any(not 20 <= f <= 7000 for f in self.frequencies):
            raise ValueError(f"frequencies must be Hz between 20 and 7000, got {self.frequencies!r}.")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a finite number >= 0 (1 = off), got {self.guidance_scale!r}.")
        from codec.sampling import DECODE_SAMPLERS

        if self.decode_sampler not in ("auto", *DECODE_SAMPLERS):
            raise ValueError(f"decode_sampler must be 'auto' or one of {DECODE_SAMPLERS}, got {self.decode_sampler!r}.")
        for name in ("clips_per_caption", "train_steps", "batch_size", "decode_steps", "top_k", "takes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}.")
        if self.takes > 1 and self.top_k == 1:
            raise ValueError(f"top_k=1 draws only the likeliest id, so the {self.takes} takes of every prompt would be "
                             "identical; use top_k >= 2, or takes=1.")
        if self.seconds <= 0.2:
            raise ValueError(f"seconds must be above 0.2, got {self.seconds!r}.")
        from semantilm.resources import resolve_config

        resolve_config(self.lm_size, "lm", label="lm_size")  # FileNotFoundError now, not after tokenising
        self.frequencies = tuple(float(f) for f in self.frequencies)
        self.held_out = [(float(f), str(name)) for f, name in self.held_out] or [
            (f, list(PHRASINGS)[i % len(PHRASINGS)]) for i, f in enumerate(self.frequencies)
        ]
        for f, phrasing in self.held_out:
            if f not in self.frequencies or phrasing not in PHRASINGS:
                raise ValueError(f"held_out pair {(f, phrasing)!r} must be one of `frequencies` and one of "
                                 f"{sorted(PHRASINGS)}.")


@dataclass
class DemoResult:
    """Where the outputs are and how well the audio followed the prompts.

    prompts: one row per generated clip (``takes`` per unseen prompt), in prompt order.
    """

    output_dir: Path
    pitch_accuracy: float
    prompts: list[dict[str, Any]]
    seconds: dict[str, float]


def demo_decode_settings(config: DemoConfig, codec: Any) -> Any:
    """The ``DecodeSettings`` of the demo's decodes: ``config.decode_sampler`` ("auto": the codec's
    distilled decoder when it has one) and ``config.decode_steps`` (default 4 distilled, else 25)."""
    from codec import DecodeSettings

    sampler = config.decode_sampler
    if sampler == "auto":
        has_student = getattr(getattr(codec, "decoder", None), "student", None) is not None
        sampler = "distilled" if has_student else "dpmsolver++"
    steps = config.decode_steps or (4 if sampler == "distilled" else 25)
    return DecodeSettings(sampler=sampler, steps=steps)


def demo_captions(frequencies: tuple[float, ...]) -> dict[tuple[float, str], str]:
    """The caption of every (frequency, phrasing) pair."""
    return {(f, name): text.format(hz=f) for f in frequencies for name, text in PHRASINGS.items()}


def build_demo_dataset(config: DemoConfig, sample_rate: int = 16000):
    """The training set as a ``datasets.Dataset`` (audio, caption): every pair but the held-out ones."""
    from datasets import Dataset

    rng = np.random.default_rng(config.seed)
    t = np.arange(int(round(config.seconds * sample_rate))) / sample_rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    rows = []
    for (freq, phrasing), caption in demo_captions(config.frequencies).items():
        if (freq, phrasing) in config.held_out:
            continue
        for _ in range(config.clips_per_caption):
            phase = rng.uniform(0, 2 * math.pi)
            wave = PEAK * fade * np.sin(2 * math.pi * freq * t + phase)
            rows.append({"audio": {"array": wave.astype(np.float32), "sampling_rate": sample_rate}, "caption": caption})
    order = rng.permutation(len(rows))
    return Dataset.from_list([rows[i] for i in order])


def _recipe_config(config: DemoConfig, data_dir: Path, lm_dir: Path):
    from plumbing.progress import progress_enabled
    from semantilm.resources import resolve_config
    from semantilm.training.recipe_config import RecipeConfig, from_dict

    size = resolve_config(config.lm_size, "lm", label="lm_size")  # a shipped size by name, or a path
    frames = math.ceil(config.seconds * 50) + 4
    return from_dict(RecipeConfig, {
        "task": "text_to_audio",
        "codec": {"name": config.codec, "device": "cpu"},
        "data": {"dataset": str(data_dir), "caption_column": "caption", "encode_batch_size": 32},
        "model": {"size": str(size), "text_vocab_size": 48},
        "train": {"output_dir": str(lm_dir), "max_steps": config.train_steps, "batch_size": config.batch_size,
                  "learning_rate": config.learning_rate, "weight_decay": 0.0, "warmup_steps": 20,
                  "lr_scheduler_type": "cosine", "save_steps": config.train_steps, "save_total_limit": 1,
                  "logging_steps": 10, "max_length": 2 * frames + 40, "caption_dropout": 0.1,
                  "seed": config.seed, "use_cpu": True, "report_to": "none", "disable_tqdm": not progress_enabled()},
        "resume": False,
    })


def run_demo(config: DemoConfig | None = None) -> DemoResult:
    """Run the demo end to end; see the module docstring for what it writes."""
    import soundfile as sf
    import torch

    from codec.eval import held_out_tones
    from semantilm.codec_api import load_codec
    from semantilm.eval.adherence import prompt_adherence
    from semantilm.generation.generate import generate_audio
    from semantilm.generation.settings import SamplingSettings
    from semantilm.models.lm import load_lm
    from semantilm.training.recipes import run_recipe

    config = config or DemoConfig()
    out = prepare_output_dir(config.output_dir, config.overwrite)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    codec = load_codec(config.codec, device="cpu", decoder=True)  # fails early, before any work
    settings = demo_decode_settings(config, codec)
    data_dir = out / "data"
    build_demo_dataset(config, codec.sample_rate).save_to_disk(str(data_dir))
    timings["data"] = time.perf_counter() - start

    lm_dir = out / "lm"
    result = run_recipe(_recipe_config(config, data_dir, lm_dir), codec=codec)
    timings["tokenise + train"] = time.perf_counter() - start - timings["data"]

    t0 = time.perf_counter()
    captions = demo_captions(config.frequencies)
    asked = [captions[pair] for pair in config.held_out]
    prompts = asked * config.takes  # take 1 of every prompt, then take 2, ...: one batch per take
    lm = load_lm(lm_dir, codec=codec)
    sampling = SamplingSettings(seconds=config.seconds, guidance_scale=config.guidance_scale, top_k=config.top_k,
                                seed=config.seed, batch_size=len(asked))
    generated = generate_audio(
        lm.model, lm.tokenizer, codec, prompts, sampling=sampling,
        decode=settings,
        generator=torch.Generator().manual_seed(config.seed),
    )
    timings["generate + decode"] = time.perf_counter() - t0

    waves = [generated.audio[i, : int(generated.lengths[i])].numpy() for i in range(len(prompts))]
    score = prompt_adherence(prompts, waves, codec.sample_rate)
    # The same tones through the codec alone (encode -> decode): what the LM's audio can at best
    # be, so that the report separates the LM's errors from the codec's.
    tones, _ = held_out_tones(0, codec.sample_rate, config.seconds, seed=config.seed,
                              frequencies=[f for f, _ in config.held_out], peak=PEAK)
    enc = codec.encode(list(tones), codec.sample_rate)
    rt = codec.decode(enc.tokens, enc.lengths, settings=settings, generator=torch.Generator().manual_seed(config.seed))
    reference = prompt_adherence(asked, [rt.audio[i, : int(rt.lengths[i])].numpy() for i in range(len(asked))],
                                 codec.sample_rate)["clips"]
    rows = []
    for i, prompt in enumerate(asked):
        for take in range(1, config.takes + 1):
            k = (take - 1) * len(asked) + i
            clip, ref = score["clips"][k], reference[i]
            name = f"prompt_{i:02d}" if config.takes == 1 else f"prompt_{i:02d}_take{take}"
            atomic_write(out / f"{name}.wav", lambda tmp, w=waves[k]: sf.write(tmp, w, codec.sample_rate, format="WAV"))
            measured = _finite(clip.get("measured_frequency"))
            _spectrogram_png(out / f"{name}.png", waves[k], codec.sample_rate, f"{prompt} (take {take})", measured)
            rows.append({"file": f"{name}.wav", "prompt": prompt, "take": take, "asked_hz": clip.get("frequency"),
                         "measured_hz": measured, "pitch_ok": bool(clip.get("pitch_ok")),
                         "codec_round_trip_hz": _finite(ref.get("measured_frequency")),
                         "codec_round_trip_ok": bool(ref.get("pitch_ok"))})
    _loss_png(out / "loss.png", result.losses)
    timings["total"] = time.perf_counter() - start
    accuracy = float(score["pitch_accuracy"] or 0.0)
    _write_report(out, config, rows, accuracy, result, codec, timings)
    return DemoResult(out, accuracy, rows, timings)


def prepare_output_dir(folder: str | Path, overwrite: bool = False) -> Path:
    """Create the demo's output folder and mark it as a demo's (``MARKER``); returns it.

    A folder that holds files and is not an earlier demo's (no marker, no demo ``report.json``) is
    refused with an ``OutputExistsError`` before any work, unless ``overwrite``: the demo would
    replace files it did not write.
    """
    from plumbing.io import OutputExistsError, check_output_path, write_json

    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"demo output {str(out)!r} is a file, not a folder; choose another --out.")
    check_output_path(out, "folder", "demo output folder")  # under a file, or not writable
    if out.is_dir() and any(out.iterdir()) and not overwrite and not _is_demo_folder(out):
        raise OutputExistsError(
            f"demo output folder {str(out)!r} holds files that an earlier demo did not write; nothing was "
            "written. Choose an empty or new --out, or pass --overwrite (overwrite=True) to write into it anyway."
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, {"written_by": "semantilm demo"})
    return out


def _is_demo_folder(out: Path) -> bool:
    if (out / MARKER).is_file():
        return True
    try:  # a demo run from before the marker existed
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and {"config", "pitch_accuracy", "prompts"} <= set(report)


def _finite(value: Any) -> float | None:
    """A measured frequency as a float, or None for silence (no peak)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _spectrogram_png(path: Path, wave: np.ndarray, sample_rate: int, title: str, measured: float | None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.specgram(wave + 1e-9, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=-120)
    ax.set_ylim(0, 2000)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if measured:
        ax.axhline(measured, color="cyan", lw=0.8, ls="--")
        title += f"\nmeasured {measured:.0f} Hz"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _loss_png(path: Path, losses: list[tuple[int, float]]) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    if losses:
        steps, values = zip(*losses)
        ax.plot(steps, values, lw=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (audio tokens)")
    ax.set_title("text-to-audio LM", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the demo draws its pictures with matplotlib: pip install 'semantilm[demo]'") from None
    return plt


def _write_report(out: Path, config: DemoConfig, rows: list[dict[str, Any]], accuracy: float, result: Any,
                  codec: Any, timings: dict[str, float]) -> None:
    settings = demo_decode_settings(config, codec)
    first = result.losses[0][1] if result.losses else float("nan")
    last = result.losses[-1][1] if result.losses else float("nan")
    lines = [
        "# semantilm demo",
        "",
        f"Codec `{codec.variant}` ({codec.frame_rate:g} frames/s, {codec.semantic_vocab_size} semantic + "
        f"{codec.acoustic_vocab_size} acoustic ids); {result.num_examples} training clips of {config.seconds:g} s; "
        f"LM `{config.lm_size}` trained {result.global_step} steps (loss {first:.2f} -> {last:.2f}, `loss.png`); "
        f"sampled with top_k {config.top_k}, guidance {config.guidance_scale:g}; decode steps {settings.steps} "
        f"({settings.sampler}).",
        "",
        f"Prompts the LM never saw (their frequency/phrasing pair was held out of training), {config.takes} "
        f"sampled clip{'s' if config.takes > 1 else ''} (takes) each:",
        "",
        "| file | prompt | asked Hz | measured Hz | within 3 % | the tone through the codec alone, Hz |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        measured = f"{r['measured_hz']:.1f}" if r["measured_hz"] else "-"
        codec_hz = f"{r['codec_round_trip_hz']:.1f}" if r["codec_round_trip_hz"] else "-"
        lines.append(f"| {r['file']} | {r['prompt']} | {r['asked_hz']:.0f} | {measured} | "
                     f"{'yes' if r['pitch_ok'] else 'no'} | {codec_hz} ({'ok' if r['codec_round_trip_ok'] else 'off'}) |")
    codec_acc = sum(r["codec_round_trip_ok"] for r in rows) / len(rows)  # every take of a prompt shares its tone
    ok = sum(r["pitch_ok"] for r in rows)
    lines += ["", f"Pitch accuracy: **{accuracy:.0%}** of the generated clips ({ok} of {len(rows)}); the codec's own "
              f"round trip of the same tones (encode -> decode, the best the LM's audio can be): {codec_acc:.0%}.", "",
              "Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + "."]
    atomic_write(out / "report.md", "\n".join(lines) + "\n")
    report = {"config": asdict(config), "pitch_accuracy": accuracy, "prompts": rows, "seconds": timings,
              "train_steps": result.global_step, "losses": result.losses, "codec": str(codec.variant)}
    atomic_write(out / "report.json", json.dumps(report, indent=2) + "\n")
