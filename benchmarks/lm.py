"""LM-side speed and memory: training tokens/s and generation tokens/s (KV cache), peak RSS.

Each (model, phase) runs in its own subprocess so that its peak resident memory is its own.
The vocabulary is that of the official 100 tokens/s codec (16384 semantic + 8192 acoustic ids)
after an 8000-id sentencepiece text vocabulary; weights are random (speed does not depend on them).

    python benchmarks/lm.py                       # tiny and base-100m, CPU
    python benchmarks/lm.py --models tiny --device cuda
    python benchmarks/lm.py --models base-100m --gen-batch --grad-ckpt off on   # training only, +/- checkpointing
    python benchmarks/lm.py --models base-100m base-1b --device cuda --strategies single ddp fsdp \
        --nproc 8 --grad-ckpt off on --gen-batch                                # GPU: DDP / FSDP, bf16

Training rows report tokens/s (all processes), peak memory (GPU: max allocated per process;
CPU: peak RSS) and MFU = 6 * params * tokens/s / (peak FLOP/s * processes) with the peak of
semantilm.training.trainer.peak_device_flops (n/a on a CPU).
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


def _distribute(model, strategy: str, device: str):
    """Wrap ``model`` for DDP or FSDP (full shard, bf16, one unit per decoder layer) under torchrun."""
    import functools
    import os

    import torch
    import torch.distributed as dist

    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        model = model.to(f"cuda:{os.environ['LOCAL_RANK']}")
    if strategy == "ddp":
        return torch.nn.parallel.DistributedDataParallel(model), dist.get_world_size()
    from torch.distributed.fsdp import FullyShardedDataParallel, MixedPrecision, ShardingStrategy
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    layer = type(model.model.layers[0])
    bf16 = MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16, buffer_dtype=torch.bfloat16)
    wrapped = FullyShardedDataParallel(
        model, sharding_strategy=ShardingStrategy.FULL_SHARD, use_orig_params=True,
        auto_wrap_policy=functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={layer}),
        mixed_precision=bf16 if device.startswith("cuda") else None, device_id=torch.cuda.current_device()
        if device.startswith("cuda") else None)
    return wrapped, dist.get_world_size()


def bench_train(name: str, device: str, batch: int, seq: int, steps: int, grad_ckpt: bool = False,
                strategy: str = "single") -> dict:
    from semantilm.training.trainer import peak_device_flops

    model, params, torch = build(name, device if strategy == "single" else "cpu")
    lay = layout()
    model.train()
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    world = 1
    if strategy != "single":
        model, world = _distribute(model, strategy, device)
        device = f"cuda:{torch.cuda.current_device()}" if device.startswith("cuda") else device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda") and strategy != "fsdp")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(lay.semantic_offset, lay.vocab_size, (batch, seq), generator=g).to(device)
    times = []
    for i in range(steps + 1):  # the first step warms up (allocations, kernels)
        sync(torch, device)
        t0 = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(torch, device)
        if i:
            times.append(time.perf_counter() - t0)
    per_step = sorted(times)[len(times) // 2]
    rate = world * batch * seq / per_step
    peak = peak_device_flops() if device.startswith("cuda") else None
    mfu = 6 * params * 1e6 * rate / (peak * world) if peak else None
    return {"params_M": params, "tokens_per_s": rate, "step_s": per_step, "shape": f"{batch}x{seq}", "mfu": mfu,
            "grad_ckpt": grad_ckpt, "strategy": f"{strategy} x{world}" if world > 1 else strategy}


def bench_generate(name: str, device: str, batch: int, new_frames: int) -> dict:
    from semantilm.generation.settings import SamplingSettings
    from semantilm.generation.token_generation import generate_tokens

    model, params, torch = build(name, device)
    lay = layout()
    model.eval()
    prompt = [1] + list(range(2, 14)) + [lay.audio_start_id]  # a 14-id "caption" prompt
    sampling = SamplingSettings(top_k=250, seed=0, batch_size=batch)
    generate_tokens(model, lay, [prompt] * batch, 4, sampling=sampling)  # warm-up
    sync(torch, device)
    t0 = time.perf_counter()
    tokens, lengths = generate_tokens(model, lay, [prompt] * batch, new_frames, min_frames=new_frames, sampling=sampling)
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
        result = bench_train(args.model, args.device, args.batch, args.seq, args.steps, args.ckpt == "on",
                             args.strategy)
    else:
        result = bench_generate(args.model, args.device, args.batch, args.frames)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    if args.device.startswith("cuda"):
        result["gpu_peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_rss_MiB"] = peak
    import os

    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "base-100m"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (median reported)")
    parser.add_argument("--train-batch", type=int, nargs="+", default=[8, 2], help="per model, in --models order")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--gen-batch", type=int, nargs="*", default=[1, 4], help="none: no generation rows")
    parser.add_argument("--grad-ckpt", nargs="+", choices=["off", "on"], default=["off"])
    parser.add_argument("--strategies", nargs="+", choices=["single", "ddp", "fsdp"], default=["single"])
    parser.add_argument("--nproc", type=int, default=2, help="processes of a ddp / fsdp row (torchrun)")
    parser.add_argument("--ckpt", default="off", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="single", help=argparse.SUPPRESS)
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
        jobs.extend((model, "train", tb, strategy, ckpt) for strategy in args.strategies for ckpt in args.grad_ckpt)
        jobs.extend((model, "generate", gb, "single", "off") for gb in args.gen_batch)
    for model, phase, batch, strategy, ckpt in jobs:
        launch = [sys.executable] if strategy == "single" else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}"]
        cmd = [*launch, __file__, "--child", "--phase", phase, "--model", model, "--batch", str(batch),
               "--device", args.device, "--threads", str(args.threads), "--steps", str(args.steps),
               "--seq", str(args.seq), "--frames", str(args.frames), "--ckpt", ckpt, "--strategy", strategy]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), **_env()})
        if out.returncode:
            sys.stderr.write(out.stderr)
            raise SystemExit(f"benchmark {model}/{phase} failed")
        rows.append((model, phase, json.loads(out.stdout.strip().splitlines()[-1])))

    print(f"device={args.device} threads={args.threads}")
    print("| model | params (M) | phase | batch x tokens | tokens/s | audio s/s | peak RSS (MiB) | GPU peak (MiB) | MFU |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for model, phase, r in rows:
        audio = f"{r['audio_s_per_s']:.2f}" if "audio_s_per_s" in r else "-"
        gpu = f"{r['gpu_peak_MiB']:.0f}" if "gpu_peak_MiB" in r else "-"
        mfu = "-" if phase != "train" else ("n/a" if r.get("mfu") is None else f"{100 * r['mfu']:.1f} %")
        if phase == "train":
            phase = f"train ({r['strategy']}{', grad ckpt' if r['grad_ckpt'] else ''})"
        print(f"| {model} | {r['params_M']:.1f} | {phase} | {r['shape']} | {r['tokens_per_s']:.0f} | {audio} "
              f"| {r['peak_rss_MiB']:.0f} | {gpu} | {mfu} |")


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


if __name__ == "__main__":
    main()
