"""The distilled decoder on the full-size architecture: decode time, and the distill stage's step.

``decode``: the tokens of ``clip_a`` of ``../shared/official-reference/inputs.py`` (10.24 s; two
decoder windows, as the official front end pads it) decoded by a 4-step student (one UNet pass per
step, no unconditional half), whole decode (UNet, VAE, vocoder) timed; ``--teacher`` also times our
50-step DDIM with guidance. Compare with the official code's 50-step decode of the same tokens
(``../shared/official-reference/time_official.py dec --steps 50``), run in the same session.

``train``: a few steps of the distill stage (``configs/recipes/codec/distill_official.yaml``,
here on the CPU in fp32, batch 1) on the full-size codec, to show it runs and to time a step; and
the FLOPs of one step (``torch.utils.flop_counter``) per 10.24 s window, for the GPU-hour estimate.

Weights: the parity fixtures' stand-in fill (``tests/parity_weights.py``); the student starts as
a copy of the teacher UNet. Timing does not depend on the values.

    python benchmarks/distilled_full_size.py decode [--teacher] [--threads 2] [--decoder-dtypes float32,bfloat16]
    python benchmarks/distilled_full_size.py train --steps 3 [--out outputs/distill_official_smoke]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"


def stand_in_codec(name: str = "r100_v16384"):
    """The full-size codec with the parity fixtures' filled weights (encoder and decoder)."""
    from codec.model import SemantiCodec
    from tests.parity_weights import CONFIGS, official_decoder_state, official_encoder_state

    encoder, centroids = official_encoder_state(name)
    rate, vocab = CONFIGS[name]
    return SemantiCodec.from_official(encoder, official_decoder_state(name), centroids, token_rate=rate,
                                      semantic_vocab_size=vocab)


def time_decode(args: argparse.Namespace) -> dict:
    from codec.sampling import DecodeSettings
    from codec.student import DistilledStudent

    sys.path.insert(0, str(SHARED / "official-reference"))
    from inputs import clip_a

    codec = stand_in_codec()
    codec.decoder.student = DistilledStudent.from_teacher(codec.decoder, guidance_scale=codec.config.cfg_scale)
    codec.decoder.student.requires_grad_(False).eval()
    enc = codec.encode(torch.from_numpy(clip_a()), 16000)
    result = {"tokens": list(enc.tokens.shape), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu": platform.processor() or platform.machine()}
    runs = [("student_4", DecodeSettings(sampler="distilled", steps=4))]
    if args.teacher:
        runs.append(("teacher_ddim_50", DecodeSettings(sampler="ddim", steps=50)))
    reference = None
    for dtype in args.decoder_dtypes.split(","):
        codec.decoder.set_dtype(getattr(torch, dtype))  # as `--decoder-dtype`
        codec.decode(enc.tokens, settings=DecodeSettings(sampler="distilled", steps=1))  # warm-up, untimed
        for name, settings in runs:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                out = codec.decode(enc.tokens, enc.lengths, settings, generator=torch.Generator().manual_seed(0))
                times.append(time.perf_counter() - start)
            entry = {"seconds": times, "samples": int(out.lengths[0])}
            if name == "student_4":  # how far the precision moves the waveform (relative L2 to the first dtype's)
                reference = out.audio if reference is None else reference
                entry["rel_l2_to_first_dtype"] = float((out.audio - reference).norm() / reference.norm())
            result[f"{name}_{dtype}"] = entry
    return result


def train_steps(args: argparse.Namespace) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from codec.training.history import read_history
    from codec.training.recipe import build_stage, load_codec_recipe_config, run_codec_recipe

    work = Path(args.out or tempfile.mkdtemp())
    folder = work / "stand_in_codec"
    if not (folder / "config.json").exists():
        stand_in_codec().save_pretrained(folder)
    overrides = [f"codec.name={folder}", f"train.output_dir={work / 'run'}", f"train.max_steps={args.steps}",
                 "train.batch_size=1", "train.mixed_precision='no'", "train.use_cpu=true", "train.save_steps=1000",
                 "train.logging_steps=1", "data.dataset=synthetic", "data.synthetic_examples=8",
                 "data.synthetic_seconds=10.24", "train.warmup_steps=0"]
    config = load_codec_recipe_config(REPO / "configs" / "recipes" / "codec" / "distill_official.yaml", overrides)
    run_codec_recipe(config)
    history = read_history(work / "run")
    walls = [r["wall_s"] for r in history]
    step_seconds = [b - a for a, b in zip(walls, walls[1:])]
    # FLOPs of one training step on one 10.24 s window (forward of the frozen parts, teacher, target, student + backward).
    from codec.model import SemantiCodec

    stage = build_stage(config, SemantiCodec.from_pretrained(work / "run" / "codec"))
    wave = torch.randn(1, stage.codec.config.segment_samples) * 0.1
    with FlopCounterMode(display=False) as counter:
        stage(wave, generator=torch.Generator().manual_seed(0)).total.backward()
    return {"steps": len(history), "losses": [r["loss"] for r in history], "step_seconds": step_seconds,
            "flops_per_window_step": counter.get_total_flops(), "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["decode", "train"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--teacher", action="store_true", help="decode: also time our 50-step DDIM with guidance")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--decoder-dtypes", default="float32",
                   help="decode: comma-separated decoder precisions to time in turn (e.g. float32,bfloat16)")
    p.add_argument("--steps", type=int, default=3, help="train: optimiser steps")
    p.add_argument("--out", default=None, help="train: work folder (default: a temporary one)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from codec.fast import keep_freed_memory

    keep_freed_memory()  # as the semantilm commands that decode do
    result = time_decode(args) if args.mode == "decode" else train_steps(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
