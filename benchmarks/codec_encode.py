"""Encode throughput and peak memory of the full-size SemantiCodec encoder.

Compares, on the same machine and weights:
  * one-by-one: each clip in its own ``encode`` call with one segment per forward, which is
    what the official ``SemantiCodec.encode(filepath)`` does (one file per call, its 10.24 s
    segments one at a time);
  * batched: all clips in one ``encode`` call, their segments through AudioMAE and the LSTM
    together.
Weights are random (speed does not depend on their values). Each measurement runs in a
fresh process so that peak memory (max RSS on CPU, max allocated on GPU) is its own.

    python benchmarks/codec_encode.py                      # r100, CPU, 8 clips of 10 s
    python benchmarks/codec_encode.py --token-rate 50 --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time


def run_one(args: argparse.Namespace) -> dict:
    import torch

    from codec import SemantiCodec, SemantiCodecConfig

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    config = SemantiCodecConfig.official(args.token_rate, 16384)
    with torch.device(args.device):
        model = SemantiCodec(config)
    model = model.to(device=args.device, dtype=dtype).eval()
    g = torch.Generator().manual_seed(1)
    n = int(args.clip_seconds * 16000)
    clips = [0.3 * torch.randn(n, generator=g) for _ in range(args.clips)]
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    # Warm-up on a short clip (allocator, kernels), excluded from timing.
    model.encode(clips[0][:16000])
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    if args.mode == "one-by-one":
        for clip in clips:
            model.encode(clip, batch_size=1)
    else:
        model.encode(clips, batch_size=args.clips)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    wall = time.perf_counter() - start
    return {"mode": args.mode, "clips": args.clips, "wall_s": wall, "peak_gib": peak,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100))
    p.add_argument("--clip-seconds", type=float, default=10.0)
    p.add_argument("--batch-sizes", default="1,8", help="clips per call to measure, e.g. 1,8")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--mode", choices=("one-by-one", "batched"), help=argparse.SUPPRESS)
    p.add_argument("--clips", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:  # child process
        print(json.dumps(run_one(args)))
        return

    rows = []
    for clips in [int(b) for b in args.batch_sizes.split(",")]:
        modes = ["one-by-one"] if clips == 1 else ["one-by-one", "batched"]
        for mode in modes:
            cmd = [sys.executable, __file__, "--mode", mode, "--clips", str(clips),
                   "--token-rate", str(args.token_rate), "--clip-seconds", str(args.clip_seconds),
                   "--device", args.device, "--dtype", args.dtype]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"the {mode} x{clips} run failed:\n{proc.stderr}")
            out = proc.stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"  measured {mode} x{clips}", file=sys.stderr)

    base = {r["clips"]: r["wall_s"] / r["clips"] for r in rows if r["mode"] == "one-by-one"}
    print(f"\nSemantiCodec encode, r{args.token_rate}, {args.clip_seconds:g} s clips, {args.device} {args.dtype}, "
          f"{rows[0]['threads']} threads, {platform.processor() or platform.machine()}")
    print(f"{'mode':<12}{'clips':>6}{'wall s':>9}{'s/clip':>8}{'audio s/s':>10}{'peak GiB':>9}{'speed-up':>9}")
    for r in rows:
        per_clip = r["wall_s"] / r["clips"]
        speedup = base.get(r["clips"], per_clip) / per_clip
        print(f"{r['mode']:<12}{r['clips']:>6}{r['wall_s']:>9.2f}{per_clip:>8.2f}"
              f"{args.clip_seconds / per_clip:>10.2f}{r['peak_gib']:>9.2f}{speedup:>8.2f}x")


if __name__ == "__main__":
    main()
