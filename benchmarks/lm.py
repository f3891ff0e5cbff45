"""LM-side speed and memory: training tokens/s and generation tokens/s (KV cache), peak RSS.

Each (model, phase) runs in its own subprocess so that its peak resident memory is its own.
The vocabulary is that of the official 100 tokens/s codec (16384 semantic + 8192 acoustic ids)
after an 8000-id sentencepiece text vocabulary; weights are random (speed does not depend on them).

    python benchmarks/lm.py                       # tiny and base-100m, CPU
    python benchmarks/lm.py --models tiny --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout():
    from semantilm.tokens.layout import AudioTokenLayout

    return AudioTokenLayout(text_vocab_size=8000, semantic_vocab_size=16384, acoustic_vocab_size=8192, frame_rate=50.0)


def build(name: str, device: str):
    import torch

    from semantilm.models.lm import build_lm

    model = build_lm(layout(), ROOT / "configs" / "lm" / f"{name}.yaml", seed=0).to(device)
    return model, sum(p.numel() for p in model.parameters()) / 1e6, torch


def sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_train(name: str, device: str, batch: int, seq: int, steps: int) -> dict:
    model, params, torch = build(name, device)
    lay = layout()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(lay.semantic_offset, lay.vocab_size, (batch, seq), generator=g).to(device)
    times = []
    for i in range(steps + 1):  # the first step warms up (allocations, kernels)
        sync(torch, device)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(torch, device)
        if i:
            times.append(time.perf_counter() - t0)
    per_step = sorted(times)[len(times) // 2]
    return {"params_M": params, "tokens_per_s": batch * seq / per_step, "step_s": per_step, "shape": f"{batch}x{seq}"}


def bench_generate(name: str, device: str, batch: int, new_frames: int) -> dict:
    from semantilm.generation.generate import generate_tokens

    model, params, torch = build(name, device)
    lay = layout()
    model.eval()
    prompt = [1] + list(range(2, 14)) + [lay.audio_start_id]  # a 14-id "caption" prompt
    generate_tokens(model, lay, [prompt] * batch, 4, do_sample=True, top_k=250)  # warm-up
    torch.manual_seed(0)
    sync(torch, device)
    t0 = time.perf_counter()
    tokens, lengths = generate_tokens(model, lay, [prompt] * batch, new_frames, do_sample=True, top_k=250, min_frames=new_frames)
    sync(torch, device)
    elapsed = time.perf_counter() - t0
    new_tokens = int(2 * lengths.sum()) + batch  # audio ids + <|audio_end|>
    return {
        "params_M": params,
        "tokens_per_s": new_tokens / elapsed,
        "audio_s_per_s": float(lengths.sum()) / lay.frame_rate / elapsed,
        "shape": f"{batch}x{2 * new_frames + 1}",
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.phase == "train":
        result = bench_train(args.model, args.device, args.batch, args.seq, args.steps)
    else:
        result = bench_generate(args.model, args.device, args.batch, args.frames)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    if args.device.startswith("cuda"):
        result["gpu_peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_rss_MiB"] = peak
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "base-100m"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (median reported)")
    parser.add_argument("--train-batch", type=int, nargs="+", default=[8, 2], help="per model, in --models order")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--gen-batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--frames", type=int, default=100, help="frames generated per row (2 LM tokens each)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    rows = []
    jobs = []
    for i, model in enumerate(args.models):
        tb = args.train_batch[min(i, len(args.train_batch) - 1)]
        jobs.append((model, "train", tb))
        jobs.extend((model, "generate", gb) for gb in args.gen_batch)
    for model, phase, batch in jobs:
        cmd = [sys.executable, __file__, "--child", "--phase", phase, "--model", model, "--batch", str(batch),
               "--device", args.device, "--threads", str(args.threads), "--steps", str(args.steps),
               "--seq", str(args.seq), "--frames", str(args.frames)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), **_env()})
        if out.returncode:
            sys.stderr.write(out.stderr)
            raise SystemExit(f"benchmark {model}/{phase} failed")
        rows.append((model, phase, json.loads(out.stdout.strip().splitlines()[-1])))

    print(f"device={args.device} threads={args.threads}")
    print("| model | params (M) | phase | batch x tokens | tokens/s | audio s/s | peak RSS (MiB) |")
    print("|---|---:|---|---|---:|---:|---:|")
    for model, phase, r in rows:
        audio = f"{r['audio_s_per_s']:.2f}" if "audio_s_per_s" in r else "-"
        print(f"| {model} | {r['params_M']:.1f} | {phase} | {r['shape']} | {r['tokens_per_s']:.0f} | {audio} | {r['peak_rss_MiB']:.0f} |")


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


if __name__ == "__main__":
    main()
