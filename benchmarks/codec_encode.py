"""Encode throughput and peak memory of the full-size SemantiCodec encoder.

Workloads (each measured in a fresh process, so that peak memory, max RSS on CPU or max
allocated on GPU, is its own):

``--workload reference`` (default): the audio of ``../shared/official-reference/inputs.py``,
the same audio the official timer encodes:
  * enc1: ``clip_a()``, one 10.24 s clip (2 segments after the official padding), one call;
  * enc8: ``clips_b()``, eight 10.0 s clips in ONE ``encode`` call (batch 8), against the
    official code's one call per file.
No warm-up call (the official timer makes none either); the weights are built before timing.

``--workload random``: ``--batch-sizes`` clips of ``--clip-seconds`` random noise, encoded
one by one (``batch_size=1``, one call per clip, as the official API works) and batched
(all clips in one call).

Weights: ``--weights random`` (default; speed does not depend on the values) or ``parity``
(the stand-in weights of the parity tests, ``tests/parity_weights.py``: same tokens as the
official code with the same stand-ins; about a minute to build, not timed).

    python benchmarks/codec_encode.py                                  # r100, CPU fp32, 2 threads
    python benchmarks/codec_encode.py --official enc1=12.1,enc8=6.3    # adds the ratio column
    python benchmarks/codec_encode.py --workload random --token-rate 50 --device cuda --dtype bfloat16

The official side, measured back to back on the same machine (its own virtual environment,
set up as described in ../shared/official-reference/README.md; one JSON line per run, read
``per_clip_seconds``):

    export SEMANTICODEC_OFFICIAL=/path/to/official/checkout
    /path/to/official-venv/bin/python ../shared/official-reference/time_official.py enc1
    /path/to/official-venv/bin/python ../shared/official-reference/time_official.py enc8

then pass those numbers as ``--official enc1=<s>,enc8=<s per clip>``. The machine is usually
shared: alternate ours and the official runs, take each twice, and note ``uptime``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "official-reference"


def build_model(args: argparse.Namespace):
    import torch

    from codec import SemantiCodec, SemantiCodecConfig

    torch.manual_seed(0)
    if args.weights == "parity":
        sys.path.insert(0, str(REPO))
        from tests.parity_weights import official_encoder_state

        name = f"r{args.token_rate}_v{args.vocab}"
        state, centroids = official_encoder_state(name)
        model = SemantiCodec.from_official(state, None, centroids, token_rate=args.token_rate,
                                           semantic_vocab_size=args.vocab)
    else:
        config = SemantiCodecConfig.official(args.token_rate, args.vocab)
        with torch.device(args.device):
            model = SemantiCodec(config)
    return model.to(device=args.device, dtype=getattr(torch, args.dtype)).eval()


def workload_clips(args: argparse.Namespace) -> list:
    import torch

    if args.child in ("enc1", "enc8"):
        sys.path.insert(0, str(Path(args.reference_dir)))
        from inputs import clip_a, clips_b

        clips = [clip_a()] if args.child == "enc1" else clips_b()
        return [torch.from_numpy(c) for c in clips]
    g = torch.Generator().manual_seed(1)
    n = int(args.clip_seconds * 16000)
    return [0.3 * torch.randn(n, generator=g) for _ in range(args.clips)]


def run_child(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    model = build_model(args)
    clips = workload_clips(args)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if args.child in ("one-by-one", "batched"):  # warm-up on a short clip (allocator, kernels), not timed
        model.encode(clips[0][:16000])
    if cuda:
        torch.cuda.synchronize()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    if args.child == "one-by-one":
        out = [model.encode(clip, batch_size=1) for clip in clips]
    else:
        out = [model.encode(clips, batch_size=args.batch)]
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    frames = sum(int(o.lengths.sum()) for o in out)
    return {"work": args.child, "clips": len(clips), "calls": len(out), "frames": frames, "wall_s": wall,
            "peak_gib": peak, "threads": torch.get_num_threads(), "load_start": load,
            "load_end": os.getloadavg()[0]}


def child_runs(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(child mode, clips, batch_size) per measurement."""
    if args.workload == "reference":
        return [(work, 1 if work == "enc1" else 8, args.batch) for work in args.work.split(",")]
    runs = []
    for clips in [int(b) for b in args.batch_sizes.split(",")]:
        runs.append(("one-by-one", clips, 1))
        if clips > 1:
            runs.append(("batched", clips, clips))
    return runs


def print_table(args: argparse.Namespace, rows: list[dict]) -> None:
    official = {}
    if args.official:
        for item in args.official.split(","):
            key, value = item.split("=")
            official[key.strip()] = float(value)
    base = {r["clips"]: r["wall_s"] / r["clips"] for r in rows if r["work"] == "one-by-one"}
    print(f"\nSemantiCodec encode, r{args.token_rate} v{args.vocab}, {args.weights} weights, {args.device} "
          f"{args.dtype}, {rows[0]['threads']} threads, {platform.processor() or platform.machine()}")
    print(f"{'work':<12}{'clips':>6}{'calls':>6}{'frames':>7}{'wall s':>9}{'s/clip':>8}{'peak GiB':>9}"
          f"{'load':>11}{'vs base':>9}")
    for r in rows:
        per_clip = r["wall_s"] / r["clips"]
        ref = official.get(r["work"], base.get(r["clips"]) if r["work"] in ("one-by-one", "batched") else None)
        ratio = f"{ref / per_clip:8.2f}x" if ref else f"{'-':>9}"
        print(f"{r['work']:<12}{r['clips']:>6}{r['calls']:>6}{r['frames']:>7}{r['wall_s']:>9.2f}{per_clip:>8.2f}"
              f"{r['peak_gib']:>9.2f}{r['load_start']:>5.1f}->{r['load_end']:<4.1f}{ratio}")
    if args.workload == "reference":
        print("vs base: official s/clip (--official) / ours s/clip; > 1 means ours is faster.")
    else:
        print("vs base: one-by-one s/clip / this row's s/clip.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="reference", choices=("reference", "random"))
    p.add_argument("--work", default="enc1,enc8", help="reference workloads to run: enc1, enc8 or both")
    p.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100))
    p.add_argument("--vocab", type=int, default=16384, help="semantic vocabulary (official sizes)")
    p.add_argument("--weights", default="random", choices=("random", "parity"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="encode batch_size for the reference workloads")
    p.add_argument("--clip-seconds", type=float, default=10.0, help="random workload only")
    p.add_argument("--batch-sizes", default="1,8", help="random workload: clips per measurement, e.g. 1,8")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--reference-dir", default=str(DEFAULT_REFERENCE), help="folder holding inputs.py")
    p.add_argument("--official", help="official per-clip seconds, e.g. enc1=12.1,enc8=6.3")
    p.add_argument("--child", choices=("enc1", "enc8", "one-by-one", "batched"), help=argparse.SUPPRESS)
    p.add_argument("--clips", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_child(args)))
        return

    rows = []
    for mode, clips, batch in child_runs(args):
        cmd = [sys.executable, __file__, "--child", mode, "--clips", str(clips), "--batch", str(batch)]
        for opt in ("token_rate", "vocab", "weights", "threads", "clip_seconds", "device", "dtype", "reference_dir"):
            cmd += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"the {mode} x{clips} run failed:\n{proc.stderr}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  measured {mode} x{clips}: {rows[-1]['wall_s']:.2f} s", file=sys.stderr)
    print_table(args, rows)


if __name__ == "__main__":
    main()
