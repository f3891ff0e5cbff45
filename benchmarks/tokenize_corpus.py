"""Tokenisation throughput: the codec's bare batched encode vs. ``semantilm tokenize`` end to end.

* bare: ``codec.encode`` on clips already in memory at 16 kHz, ``--batch-size`` clips per call;
* end to end: the same clips as WAV files on disk -> ``tokenize_corpus`` (DataLoader workers
  reading and resampling, length-sorted batches, Parquet shards, manifest) on 1 process;
* with ``--processes 1 2``: the ``semantilm tokenize`` command itself, from start to exit, on 1
  process and under ``accelerate launch --config_file configs/accelerate/cpu.yaml --num_processes N``
  (N processes on the CPU, one torch thread each), the same folder cut into ``--shard-size`` shards.

Both in hours of audio per hour, and their ratio (end-to-end / bare: how much of the codec's
speed the pipeline keeps). With ``--dtype bfloat16`` (or float16; a GPU) both run under autocast in
that precision, and ``--agreement`` also tokenises the clips in float32 (untimed) and reports the
share of identical semantic and acoustic ids, id by id over every row. ``--codec r100`` builds the full-size official r100 codec with random
weights (speed does not depend on the values).

    python benchmarks/tokenize_corpus.py --codec tiny --clips 64 --seconds 2
    python benchmarks/tokenize_corpus.py --codec tiny r100 --device cuda --clips 512 --seconds 10
    python benchmarks/tokenize_corpus.py --codec tiny --clips 1024 --processes 1 2 --repeats 1
    python benchmarks/tokenize_corpus.py --codec r100 --device cuda --dtype bfloat16 --agreement \
        --clips 512 --seconds 10 --fixed-length --batch-size 32 --num-workers 8
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # this file's name would shadow the standard library's tokenize module

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_codec(name: str, device: str):
    import codec as codec_pkg
    from semantilm.codec_api import load_codec

    if name == "r100":
        return codec_pkg.SemantiCodec(codec_pkg.SemantiCodecConfig.official(100, 16384)).to(device)
    return load_codec(name, 100, 16384, device, None, decoder=False)


def make_clips(folder: Path, clips: int, seconds: float, fixed: bool = False) -> list:
    import numpy as np
    import soundfile as sf
    import torch

    rng = np.random.default_rng(0)
    waves = []
    for i in range(clips):
        length = int(16000 * seconds * (1.0 if fixed else rng.uniform(0.5, 1.0)))  # lengths vary, as in a corpus
        t = np.arange(length) / 16000
        wave = (0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(length))
        sf.write(folder / f"clip{i:05d}.wav", wave.astype(np.float32), 16000, subtype="PCM_16")
        waves.append(torch.from_numpy(sf.read(folder / f"clip{i:05d}.wav", dtype="float32")[0]))
    return waves


def token_agreement(folder_a: Path, folder_b: Path) -> tuple[float, float]:
    """Share of identical (semantic, acoustic) ids of two token folders, matched by row id; ids past
    the shorter of two rows of different lengths count as different."""
    from semantilm.data.token_dataset import load_token_dataset

    def rows(folder: Path) -> dict:
        data = load_token_dataset(folder, cache_dir=folder.parent / f"{folder.name}-cache")
        return {r["id"]: (r["semantic_ids"], r["acoustic_ids"]) for r in data}

    a, b = rows(folder_a), rows(folder_b)
    same, total = [0, 0], 0
    for key, streams_a in a.items():
        streams_b = b.get(key, ([], []))
        total += max(len(streams_a[0]), len(streams_b[0]))
        for k in range(2):
            same[k] += sum(x == y for x, y in zip(streams_a[k], streams_b[k]))
    total += sum(len(streams[0]) for key, streams in b.items() if key not in a)
    return (same[0] / total, same[1] / total) if total else (1.0, 1.0)


def measure(name: str, args: argparse.Namespace) -> dict:
    from contextlib import nullcontext

    import torch

    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    model = build_codec(name, args.device)
    settings = TokenizeSettings(batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                                dtype=args.dtype)
    dtype = getattr(torch, args.dtype)
    autocast = torch.autocast(torch.device(args.device).type, dtype=dtype) if args.dtype != "float32" else nullcontext()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        waves = make_clips(folder, args.clips, args.seconds, args.fixed_length)
        hours = sum(w.numel() for w in waves) / 16000 / 3600
        with autocast:
            model.encode(waves[: args.batch_size], 16000, batch_size=args.batch_size)  # warm-up
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        bare, end_to_end = float("inf"), float("inf")
        for repeat in range(args.repeats):  # the best of a few runs: the machine may be shared
            start = time.perf_counter()
            with autocast:
                for i in range(0, len(waves), args.batch_size):
                    model.encode([w.to(args.device) for w in waves[i : i + args.batch_size]], 16000,
                                 batch_size=args.batch_size)
            sync()
            bare = min(bare, time.perf_counter() - start)
            start = time.perf_counter()
            tokenize_corpus(str(folder), model, Path(tmp) / f"tokens{repeat}", settings=settings, progress=False)
            sync()
            end_to_end = min(end_to_end, time.perf_counter() - start)
        row = {"codec": str(model.variant), "clips": args.clips, "hours": hours,
               "bare": hours / (bare / 3600), "e2e": hours / (end_to_end / 3600)}
        if args.agreement:
            tokenize_corpus(str(folder), model, Path(tmp) / "tokens-float32",
                            settings=dataclasses.replace(settings, dtype="float32"), progress=False)
            row["agreement"] = token_agreement(Path(tmp) / "tokens0", Path(tmp) / "tokens-float32")
    return row


def command_line(name: str, processes: int, folder: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """``semantilm tokenize`` on ``processes`` CPU processes (accelerate launch when more than one)."""
    semantilm = shutil.which("semantilm") or "semantilm"
    tokenize = [semantilm, "tokenize", str(folder), "--codec", name, "--out", str(out), "--no-progress",
                "--batch-size", str(args.batch_size), "--shard-size", str(args.shard_size)]
    if args.num_workers is not None:
        tokenize += ["--num-workers", str(args.num_workers)]
    if processes == 1:
        return tokenize
    # accelerate's own --cpu mode starts one process without MPI; the CPU config starts N (torchrun)
    return ["accelerate", "launch", "--config_file", str(ROOT / "configs" / "accelerate" / "cpu.yaml"),
            "--num_processes", str(processes), *tokenize]


def measure_processes(name: str, args: argparse.Namespace) -> list[dict]:
    """Wall time of the tokenize command on each number of processes in ``--processes``."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        waves = make_clips(folder, args.clips, args.seconds, args.fixed_length)
        hours = sum(w.numel() for w in waves) / 16000 / 3600
        for n in args.processes:
            best = float("inf")
            for repeat in range(args.repeats):
                out = Path(tmp) / f"tokens-{n}-{repeat}"
                start = time.perf_counter()
                env = {**os.environ, "ACCELERATE_USE_CPU": "true"}
                subprocess.run(command_line(name, n, folder, out, args), check=True, stdout=subprocess.DEVNULL, env=env)
                best = min(best, time.perf_counter() - start)
            rows.append({"codec": name, "processes": n, "hours": hours, "seconds": best, "rate": hours / (best / 3600)})
    return rows


def print_processes(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n`semantilm tokenize`, start to exit, {args.clips} clips in shards of {args.shard_size}, "
          f"best of {args.repeats}\n")
    print("| codec | processes | audio (h) | wall time (s) | h audio / h | vs 1 process |")
    print("|---|---|---|---|---|---|")
    base = {r["codec"]: r["seconds"] for r in rows if r["processes"] == 1}
    for r in rows:
        speedup = f"{base[r['codec']] / r['seconds']:.2f}x" if r["codec"] in base else ""
        print(f"| {r['codec']} | {r['processes']} | {r['hours']:.4f} | {r['seconds']:.1f} | {r['rate']:.1f} | {speedup} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", nargs="+", default=["tiny"], choices=("tiny", "tiny-random", "r100"))
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0, help="longest clip (lengths are 50-100 %% of it)")
    parser.add_argument("--fixed-length", action="store_true", help="every clip exactly --seconds long")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="encoder precision (autocast; not float32 needs a GPU)")
    parser.add_argument("--agreement", action="store_true",
                        help="also tokenise in float32 (untimed) and report the share of identical ids")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=None, help="reader processes (default: the command's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the best counts")
    parser.add_argument("--processes", type=int, nargs="*", default=[],
                        help="also time the tokenize command on these numbers of CPU processes, e.g. 1 2")
    parser.add_argument("--shard-size", type=int, default=64, help="inputs per shard for --processes")
    parser.add_argument("--skip-in-process", action="store_true", help="only the --processes table")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.processes:
        print_processes([row for name in args.codec for row in measure_processes(name, args)], args)
    if args.skip_in_process:
        return
    rows = [measure(name, args) for name in args.codec]
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    print(f"device {device}, {args.dtype}, {torch.get_num_threads()} torch threads, batch {args.batch_size}, "
          f"{'default' if args.num_workers is None else args.num_workers} DataLoader workers, 1 process, best of {args.repeats}\n")
    agreement = " same ids as float32 (semantic / acoustic) |" if args.agreement else ""
    print(f"| codec | clips | audio (h) | bare encode (h audio / h) | end to end (h audio / h) | end to end / bare |{agreement}")
    print("|---|---|---|---|---|---|" + ("---|" if args.agreement else ""))
    for r in rows:
        same = f" {100 * r['agreement'][0]:.2f} % / {100 * r['agreement'][1]:.2f} % |" if args.agreement else ""
        print(f"| {r['codec']} | {r['clips']} | {r['hours']:.4f} | {r['bare']:.1f} | {r['e2e']:.1f} | "
              f"{r['e2e'] / r['bare']:.2f} |{same}")


if __name__ == "__main__":
    main()
