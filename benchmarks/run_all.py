"""Run every benchmark and rewrite benchmarks/RESULTS.md (machine, versions, date, tables).

Measures, each as a function of batch size and of audio length:
  * codec encode and decode: wall time, audio seconds per second, peak memory;
  * tokenisation (``tokenize_corpus``, as ``semantilm tokenize`` runs it, into a token folder): hours of audio per hour;
  * LM training (forward + backward + AdamW step) and generation (KV cache, audio constraint): tokens/s.
Weights are random (speed does not depend on their values). Peak memory is the CUDA allocator
peak on GPU, or the growth of the resident set during the call on CPU (model weights excluded).

The measured tables of earlier hand-run studies live in ``benchmarks/EARLIER_RESULTS.md`` and are
copied verbatim below the generated part, so that a rerun never loses a measurement.

    python benchmarks/run_all.py                  # full-size codec (r100) and LMs; a GPU is advised
    python benchmarks/run_all.py --device cuda
    python benchmarks/run_all.py --quick          # tiny codec and LM, under a minute on a CPU (CI checks this)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EARLIER = HERE / "EARLIER_RESULTS.md"


@dataclass(frozen=True)
class Suite:
    """The sizes of one benchmark run."""

    name: str
    codec: str  # "tiny" (tiny-random codec) or "official" (full-size r100, random weights)
    batches: tuple[int, ...]  # clips (codec) or rows (LM) per call
    seconds: tuple[float, ...]  # clip lengths (codec)
    base_seconds: float  # clip length of the batch-size sweep
    decode_steps: int  # DPM-Solver++ steps
    tokenize_clips: int
    tokenize_seconds: float  # a second clip length for tokenisation (besides base_seconds)
    lm: str  # configs/lm/<lm>.yaml
    lm_lengths: tuple[int, ...]  # LM ids per training row
    gen_frames: tuple[int, ...]  # frames generated per row
    train_steps: int  # timed training steps (median reported)


QUICK = Suite("quick", "tiny", (1, 2), (0.5, 1.0), 0.5, 2, 8, 0.5, "tiny", (64, 128), (8, 16), 2)
FULL = Suite("full", "official", (1, 4), (5.0, 10.0, 20.0), 10.0, 10, 16, 30.0, "base-100m", (256, 1024), (50, 100), 3)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, device) -> tuple[float, float]:
    """(wall seconds, peak memory MiB) of one call of ``fn`` after one untimed warm-up call."""
    from codec_decode import PeakMemory

    fn()
    _sync(device)
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        fn()
        _sync(device)
        wall = time.perf_counter() - start
    return wall, memory.peak / 2**20


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_number(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def load_codec(suite: Suite, device):
    import torch

    from codec import SemantiCodec, SemantiCodecConfig

    torch.manual_seed(0)
    config = SemantiCodecConfig.tiny(100) if suite.codec == "tiny" else SemantiCodecConfig.official(100, 16384)
    return SemantiCodec(config, with_decoder=True).to(device).eval()


def _clips(n: int, seconds: float, device) -> list:
    import torch

    g = torch.Generator().manual_seed(1)
    return [(0.3 * torch.randn(int(seconds * 16000), generator=g)).to(device) for _ in range(n)]


def codec_sections(suite: Suite, device, model) -> list[str]:
    """Encode and decode tables: batch-size sweep at ``base_seconds``, then length sweep at batch 1."""
    shapes = [(b, suite.base_seconds) for b in suite.batches] + [(1, s) for s in suite.seconds if s != suite.base_seconds]
    encode_rows, decode_rows = [], []
    for batch, seconds in shapes:
        clips, size = _clips(batch, seconds, device), max(8, batch)
        wall, peak = measure(lambda clips=clips, size=size: model.encode(clips, batch_size=size), device)
        encode_rows.append([batch, seconds, wall, batch * seconds / wall, peak])
        tokens = model.encode(clips)

        def decode(tokens=tokens, batch=batch):
            import torch

            model.decode(tokens, steps=suite.decode_steps, sampler="dpmsolver++", batch_size=max(8, batch),
                         generator=torch.Generator(device).manual_seed(0))

        wall, peak = measure(decode, device)
        decode_rows.append([batch, seconds, wall, batch * seconds / wall, peak])
    heads = ["clips", "clip s", "wall s", "audio s/s", "peak MiB"]
    name = model.variant
    return [
        f"### Codec encode ({name})\n\n" + table(heads, encode_rows),
        f"### Codec decode ({name}, DPM-Solver++ {suite.decode_steps} steps, CFG 2)\n\n" + table(heads, decode_rows),
    ]


def tokenize_section(suite: Suite, device, model) -> str:
    """Throughput of ``tokenize_corpus`` (what ``semantilm tokenize`` runs) on the synthetic set into a
    fresh token folder, one shard (hours of audio per hour)."""
    from codec.data.synthetic import SyntheticSoundConfig, synthetic_dataset
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    rows = []
    settings = TokenizeSettings(batch_size=8, shard_size=suite.tokenize_clips, device=device)
    for seconds in sorted({suite.base_seconds, suite.tokenize_seconds}):
        data = synthetic_dataset(SyntheticSoundConfig(num_examples=suite.tokenize_clips, seconds=seconds))
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            tokenize_corpus(data, model, Path(folder) / "tokens", settings=settings, progress=False)
            wall = time.perf_counter() - start
        audio = suite.tokenize_clips * seconds
        rows.append([suite.tokenize_clips, seconds, wall, audio / wall])
    return (f"### Tokenisation ({model.variant}, `tokenize_corpus`, batch 8, one shard, default readers)\n\n"
            + table(["clips", "clip s", "wall s", "hours of audio per hour"], rows))


def _lm(suite: Suite, device):
    from semantilm.models.lm import build_lm
    from semantilm.tokens.layout import AudioTokenLayout

    if suite.codec == "tiny":
        layout = AudioTokenLayout(text_vocab_size=64, semantic_vocab_size=64, acoustic_vocab_size=64, frame_rate=50.0)
    else:
        layout = AudioTokenLayout(text_vocab_size=8000, semantic_vocab_size=16384, acoustic_vocab_size=8192, frame_rate=50.0)
    model = build_lm(layout, ROOT / "configs" / "lm" / f"{suite.lm}.yaml", seed=0).to(device)
    return model, layout


def lm_sections(suite: Suite, device) -> list[str]:
    """Training tokens/s over batch x length, and generation tokens/s over batch x frames."""
    import torch

    from semantilm.generation.generate import generate_tokens

    model, layout = _lm(suite, device)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    train_rows = []
    model.train()
    for batch in suite.batches:
        for length in suite.lm_lengths:
            ids = torch.randint(layout.semantic_offset, layout.vocab_size, (batch, length), generator=g).to(device)

            def step(ids=ids):
                model(input_ids=ids, labels=ids).loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            times = []
            for _ in range(suite.train_steps):
                wall, peak = measure(step, device)
                times.append(wall)
            wall = sorted(times)[len(times) // 2]
            train_rows.append([batch, length, wall, batch * length / wall, peak])
    model.eval()
    gen_rows = []
    prompt = list(range(1, 8)) + [layout.audio_start_id]
    for batch in suite.batches:
        for frames in suite.gen_frames:
            def generate(batch=batch, frames=frames):
                torch.manual_seed(0)
                return generate_tokens(model, layout, [prompt] * batch, frames, top_k=50, min_frames=frames)

            wall, peak = measure(generate, device)
            new = batch * (2 * frames + 1)
            gen_rows.append([batch, frames, wall, new / wall, batch * frames / layout.frame_rate / wall, peak])
    return [
        f"### LM training ({suite.lm}, {params:.2f} M parameters, vocabulary {layout.vocab_size})\n\n"
        + table(["batch", "ids per row", "step s", "tokens/s", "peak MiB"], train_rows),
        f"### LM generation ({suite.lm}, sampling top-k 50, audio constraint, no CFG)\n\n"
        + table(["batch", "frames per row", "wall s", "tokens/s", "audio s/s", "peak MiB"], gen_rows),
    ]


def environment(device, suite: Suite, argv: list[str]) -> str:
    """Machine, versions, date and command of this run."""
    import importlib.metadata as md

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    versions = []
    for package in ("torch", "transformers", "diffusers", "datasets", "semantilm"):
        try:
            versions.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return "\n".join([
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{' '.join(['python benchmarks/run_all.py', *argv])}`",
        f"- suite: {suite.name} (codec {suite.codec}, LM {suite.lm})",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}; GPU: {gpu}; "
        f"device {device}; load average (1/5/15 min) at the start {load}",
        f"- versions: Python {platform.python_version()}, {', '.join(versions)}",
    ])


def earlier_measurements() -> str:
    """The hand-run tables kept verbatim, their headings one level down."""
    if not EARLIER.is_file():
        return ""
    lines = EARLIER.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body = "\n".join("#" + line if line.startswith("#") else line for line in lines).strip()
    return ("## Earlier measurements\n\nHand-run studies with the scripts named in each section, kept verbatim from "
            f"`benchmarks/{EARLIER.name}` (edit that file, not this one).\n\n" + body + "\n")


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny codec and LM, small sizes (CI-sized)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"), help="file to rewrite (default benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(HERE), str(ROOT)]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    suite = QUICK if args.quick else FULL
    header = environment(device, suite, argv)
    os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars of datasets.map / shards
    import datasets

    datasets.disable_progress_bars()
    sections = []
    codec = load_codec(suite, device)
    runs = (("codec", lambda: codec_sections(suite, device, codec)),
            ("tokenisation", lambda: tokenize_section(suite, device, codec)), ("LM", lambda: lm_sections(suite, device)))
    for name, run in runs:
        start = time.perf_counter()
        out = run()
        sections.extend([out] if isinstance(out, str) else out)
        print(f"  {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    note = ("Tiny models (`--quick`): these rows check the runner and show how costs grow, not the speed of the "
            "real models.\n\n" if args.quick else "")
    text = (
        "# Benchmark results\n\n"
        "Written by `python benchmarks/run_all.py` (do not edit by hand; rerun it). Random weights, medians where "
        "stated; peak MiB = CUDA allocator peak, or CPU resident-set growth during the call.\n\n"
        f"## Latest run\n\n{header}\n\n{note}" + "\n\n".join(sections) + "\n\n" + earlier_measurements()
    )
    out = Path(args.out)
    from plumbing.io import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, text)
    print(f"wrote {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
