"""Measure what users run and rewrite benchmarks/RESULTS.md: one screen of current figures.

Codec rows (``SemantiCodec.encode`` / ``decode`` on the official timer's audio) stand against the
official SemantiCodec code, timed in the same run on the same machine, each measurement in a fresh
process and the two sides alternating; pipeline rows (``tokenize_corpus``, ``semantilm tokenize``,
``train_lm``, ``generate_audio``) have no official counterpart. The measurements themselves are in
``benchmarks/user_workloads.py``.

    python benchmarks/run_all.py --official OFFICIAL_VENV/bin/python --official-src OFFICIAL_CHECKOUT
    python benchmarks/run_all.py                # full-size rows without the official column
    python benchmarks/run_all.py --quick        # tiny models, no official code, a minute or two

The official checkout may also be named by ``SEMANTICODEC_OFFICIAL``; its environment is set up as
``../shared/official-reference/README.md`` describes. Earlier figures are in the file's git history.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_REFERENCE = ROOT.parent / "shared" / "official-reference"
DISTILLED = ("distilled", 4)  # the student decoder's sampler and steps, measured when the codec accepts them


@dataclass(frozen=True)
class Suite:
    """The sizes of one run."""

    name: str
    codec: str  # "tiny" or "r100" (official sizes, random weights)
    clip_seconds: float | None  # the reference clips cut to this length (None: as they are)
    lm: str  # configs/lm/<lm>.yaml
    tokenize: tuple[int, float]  # synthetic clips and their seconds for tokenize_corpus
    command: tuple[int, float]  # the same for the `semantilm tokenize` command (tiny codec)
    train_steps: int
    generate_seconds: float
    ddim_steps: int = 50  # the official decode's steps
    fast_steps: int = 15  # DPM-Solver++ steps (also those of the text-to-audio row)


QUICK = Suite("quick", "tiny", 1.0, "tiny", (8, 1.0), (8, 1.0), 3, 1.0, ddim_steps=5, fast_steps=3)
FULL = Suite("full", "r100", None, "base-100m", (8, 10.0), (16, 2.0), 3, 10.0)


@dataclass
class Row:
    """One line of a table: seconds of ours and (codec rows) of the official code."""

    work: str
    call: str
    seconds: float | None
    official: float | None = None
    official_note: str = ""  # shown after the official figure (e.g. which official work it is)
    rate: str = ""  # pipeline rows: throughput
    failed: str = ""  # why the row has no figure


@dataclass
class Official:
    """How to run the official timer; ``python`` None: not run."""

    python: str | None
    source: str | None
    reference: Path
    threads: int
    versions: dict = field(default_factory=dict)

    def time(self, mode: str, steps: int) -> dict:
        command = [self.python, str(self.reference / "time_official.py"), mode, "--threads", str(self.threads)]
        if mode == "dec":
            command += ["--steps", str(steps)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "SEMANTICODEC_OFFICIAL": self.source})
        if done.returncode:
            raise RuntimeError(f"the official {mode} run failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        self.versions["torch"] = result.get("torch")
        return result


def attempt(what: str, fn: Callable[[], dict]) -> tuple[dict | None, str]:
    """``fn()``, or None and a one-line reason when it fails (the run goes on)."""
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as error:  # noqa: BLE001 - a failed row is reported in the table, not fatal
        reason = str(error).strip().splitlines()
        print(f"  {what}: failed: {chr(10).join(reason[-5:])}", file=sys.stderr)
        return None, (reason[-1] if reason else type(error).__name__)[:120]
    print(f"  {what}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return result, ""


def codec_rows(suite: Suite, run: Callable[[str, dict], dict], official: Official) -> list[Row]:
    """Encode 1 clip, 8 clips; decode with DDIM (official), DPM-Solver++ and (when supported) the distilled decoder."""
    from user_workloads import decode_settings_supported

    common = {"codec": suite.codec, "seconds": suite.clip_seconds, "reference_dir": str(official.reference)}
    length = f"{suite.clip_seconds:g} s" if suite.clip_seconds else None
    rows = []

    def measure(mode: str | None, name: str, kwargs: dict) -> tuple[dict | None, dict | None, str]:
        theirs = None
        if official.python and mode:
            theirs, _ = attempt(f"official {mode}", lambda: official.time(mode, suite.ddim_steps))
        ours, failed = attempt(f"{name} {kwargs}", lambda: run(name, {**common, **kwargs}))
        return ours, theirs, failed

    ours, theirs, failed = measure("enc1", "encode", {"work": "enc1"})
    rows.append(Row(f"encode 1 clip ({length or '10.24 s'})", "`codec.encode(clip)`", ours and ours["seconds"],
                    theirs and theirs["seconds"], failed=failed))
    ours, theirs, failed = measure("enc8", "encode", {"work": "enc8"})
    rows.append(Row(f"encode 8 clips ({length or '10 s'} each), per clip", "`codec.encode(clips)`, one call",
                    ours and ours["seconds"] / 8, theirs and theirs["per_clip_seconds"], "(8 calls)", failed=failed))
    ours, theirs, failed = measure("dec", "decode", {"sampler": "ddim", "steps": suite.ddim_steps})
    ddim = theirs and theirs["seconds"]
    clip = length or "10.24 s"
    defaults = "`codec.decode(tokens)` (defaults)" if suite.ddim_steps == 50 else f"`DecodeSettings(steps={suite.ddim_steps})`"
    rows.append(Row(f"decode {clip}: DDIM {suite.ddim_steps} steps, guidance 2", defaults,
                    ours and ours["seconds"], ddim, failed=failed))
    samplers = [("dpmsolver++", suite.fast_steps, "float32", f"DPM-Solver++ {suite.fast_steps} steps")]
    if decode_settings_supported(*DISTILLED) is None:
        student = f"distilled student, {DISTILLED[1]} steps"
        samplers += [(*DISTILLED, "float32", student), (*DISTILLED, "bfloat16", f"{student}, bf16 decoder")]
    for sampler, steps, dtype, label in samplers:
        ours, _, failed = measure(None, "decode", {"sampler": sampler, "steps": steps, "decoder_dtype": dtype})
        call = f'`DecodeSettings(sampler="{sampler}", steps={steps})`'
        if dtype != "float32":
            call += f', `load_codec(..., decoder_dtype="{dtype}")`'
        rows.append(Row(f"decode {clip}: {label}", call, ours and ours["seconds"], ddim, f"(DDIM {suite.ddim_steps})",
                        failed=failed))
    return rows


def pipeline_rows(suite: Suite, run: Callable[[str, dict], dict], tokens_dir: Path) -> list[Row]:
    """Tokenisation (in Python and from the command line), LM training steps, text to audio."""
    rows = []
    clips, seconds = suite.tokenize
    result, failed = attempt("tokenize", lambda: run("tokenize", {"codec": suite.codec, "clips": clips, "seconds": seconds,
                                                                   "out_dir": str(tokens_dir)}))
    rows.append(Row(f"tokenise {clips} synthetic clips of {seconds:g} s ({suite.codec} codec)",
                    '`tokenize_corpus("synthetic", codec, folder)`', result and result["seconds"],
                    rate=result and f"{result['audio_hours'] / (result['seconds'] / 3600):.1f} h audio / h", failed=failed))
    clips, seconds = suite.command
    result, failed = attempt("tokenize command", lambda: run("tokenize_command", {"clips": clips, "seconds": seconds}))
    rows.append(Row(f"the same, {clips} clips of {seconds:g} s (tiny codec), start to exit",
                    "`semantilm tokenize synthetic --codec tiny`", result and result["seconds"],
                    rate=result and f"{result['audio_hours'] / (result['seconds'] / 3600):.1f} h audio / h", failed=failed))
    kwargs = {"lm": suite.lm, "codec": suite.codec, "steps": suite.train_steps, "batch_size": 2}
    if tokens_dir.is_dir():
        kwargs["tokens_dir"] = str(tokens_dir)
    result, failed = attempt("train", lambda: run("train", kwargs))
    rows.append(Row(f"train {suite.lm} for {suite.train_steps} steps, batch 2"
                    + (f" (~{result['audio_ids_per_row']:.0f} audio ids per row)" if result else ""),
                    "`train_lm(model, tokenizer, rows, config)`", result and result["seconds"],
                    rate=result and f"{result['seconds'] / result['steps']:.2f} s / step (set-up included)", failed=failed))
    seconds = suite.generate_seconds
    result, failed = attempt("generate", lambda: run("generate", {"lm": suite.lm, "codec": suite.codec, "seconds": seconds,
                                                                   "steps": suite.fast_steps}))
    rows.append(Row(f"text to audio, 1 caption, {seconds:g} s ({suite.lm} LM, {suite.codec} codec, "
                    f"DPM-Solver++ {suite.fast_steps})",
                    "`generate_audio(model, tokenizer, codec, [caption])`", result and result["seconds"],
                    rate=result and f"{result['audio_seconds'] / result['seconds']:.2f} audio s / s", failed=failed))
    return rows


def seconds_cell(value: float | None, failed: str = "") -> str:
    if value is None:
        return f"failed: {failed}" if failed else "-"
    return f"{value:.0f} s" if value >= 100 else f"{value:.3g} s"


def codec_table(rows: list[Row], with_official: bool) -> list[str]:
    lines = ["| work | semantilm call | semantilm | official | official / semantilm |", "|---|---|---|---|---|"]
    for r in rows:
        official = seconds_cell(r.official) + (f" {r.official_note}" if r.official is not None and r.official_note else "")
        if not with_official:
            official = "not run"
        ratio = f"{r.official / r.seconds:.2f}x" if r.official and r.seconds else "-"
        lines.append(f"| {r.work} | {r.call} | {seconds_cell(r.seconds, r.failed)} | {official} | {ratio} |")
    return lines


def pipeline_table(rows: list[Row]) -> list[str]:
    lines = ["| work | semantilm call | wall | throughput |", "|---|---|---|---|"]
    lines += [f"| {r.work} | {r.call} | {seconds_cell(r.seconds, r.failed)} | {r.rate or '-'} |" for r in rows]
    return lines


def machine() -> dict:
    """CPU model, physical cores, logical CPUs and load average of this machine."""
    cpu, cores = platform.processor() or platform.machine(), set()
    try:
        block: dict[str, str] = {}
        for line in [*Path("/proc/cpuinfo").read_text().splitlines(), ""]:
            key, _, value = line.partition(":")
            if line.strip():
                block[key.strip()] = value.strip()
                continue
            cpu = block.get("model name", cpu)
            if block:
                cores.add((block.get("physical id"), block.get("core id")))
            block = {}
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": cpu, "cores": len(cores) or os.cpu_count(), "logical": os.cpu_count(), "load": load}


def versions() -> str:
    import importlib.metadata as md

    found = []
    for package in ("torch", "transformers", "diffusers", "datasets"):
        try:
            found.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def command_line(suite: Suite, official: Official) -> str:
    """How this run was started, without the paths of this machine."""
    parts = ["python benchmarks/run_all.py"] + (["--quick"] if suite.name == "quick" else [])
    if official.python:
        parts.append("--official OFFICIAL_VENV/bin/python --official-src OFFICIAL_CHECKOUT")
    return " ".join(parts + ([] if official.threads == 2 else [f"--threads {official.threads}"]))


def render(suite: Suite, codec: list[Row], pipeline: list[Row], facts: dict, official: Official) -> str:
    """The whole of RESULTS.md."""
    command = command_line(suite, official)
    with_official = bool(official.python)
    if with_official:
        how = (f"the official SemantiCodec code in its own environment (torch {official.versions.get('torch') or '?'}, "
               "stand-in weights), timed by `../shared/official-reference/time_official.py` in fresh processes, "
               "alternating with ours")
    else:
        how = "not run in this run (pass `--official`; see the runner's docstring)"
    size = ("tiny models (`--quick`): the rows check the runner, they are not the speed of the real models"
            if suite.name == "quick" else "official r100 codec sizes (semantic vocabulary 16384), random weights, fp32")
    lines = [
        "# Benchmark results", "",
        f"Written by `{command}` on {facts['date']}; rerun it rather than editing this file. "
        "Earlier figures are in the file's git history.", "",
        f"- machine: {facts['cpu']}, {facts['cores']} cores ({facts['logical']} logical CPUs), "
        f"{facts['threads']} torch threads, CPU only; load average at the start {facts['load']:.1f}",
        f"- software: {facts['versions']}",
        f"- sizes: {size}",
        f"- official code: {how}", "",
        *([f"The machine was shared (load {facts['load']:.1f} on {facts['cores']} cores): absolute times are slower than "
           "on a quiet machine; the ratios, from alternating runs, are the comparison.", ""]
          if facts["load"] > facts["cores"] else []),
        "## Codec, against the official code", "",
        "The official timer's audio (`inputs.py`): one clip, eight clips; decoding tokens as long as the one clip "
        "(two decoder windows at r100). The official code decodes with DDIM 50, eta 1 and guidance 2, as ours does by "
        "default; the faster samplers are compared with that.", "",
        *codec_table(codec, with_official), "",
        "## Pipelines", "",
        *pipeline_table(pipeline), "",
        "Studies behind the defaults (one script each, `--help` for sizes): samplers against a 200-step "
        "reference (`decoder_samplers.py`), decoder batching and memory (`codec_decode.py`), encode batch "
        "sizes (`codec_encode.py`), tokenisation on several processes (`tokenize_corpus.py`), guidance and "
        "streaming (`generation.py`), LM training strategies (`lm.py`), judging generated audio "
        "(`generation_metrics.py`), tiny-codec quality (`codec_quality.py`, `codec_speech.py`).",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models, no official code (a minute or two)")
    parser.add_argument("--official", default=None, help="the python of the official code's environment")
    parser.add_argument("--official-src", default=os.environ.get("SEMANTICODEC_OFFICIAL"),
                        help="the official checkout (default: $SEMANTICODEC_OFFICIAL)")
    parser.add_argument("--reference-dir", default=str(DEFAULT_REFERENCE),
                        help="the official-reference folder (inputs.py, time_official.py; default ../shared/official-reference)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on both sides (default 2)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"), help="file to rewrite (default benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    if args.quick and args.official:
        parser.error("--quick times tiny models, which the official code does not have: leave out --official.")
    if args.official and not args.official_src:
        parser.error("--official needs the official checkout: --official-src PATH or SEMANTICODEC_OFFICIAL=PATH.")
    for name in ("official", "official_src"):
        path = getattr(args, name)
        if args.official and not Path(path).exists():
            parser.error(f"--{name.replace('_', '-')} {path!r} does not exist.")
    return args


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    sys.path[:0] = [str(HERE), str(ROOT)]
    os.environ.setdefault("TQDM_DISABLE", "1")
    import tempfile

    import torch
    import user_workloads

    suite = QUICK if args.quick else FULL
    official = Official(args.official, args.official_src, Path(args.reference_dir), args.threads)
    facts = {**machine(), "threads": args.threads, "versions": versions(),
             "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"}
    if args.quick:  # in this process: quicker, and a test can run it
        torch.set_num_threads(args.threads)

        def run(name: str, kwargs: dict) -> dict:
            return user_workloads.WORKLOADS[name](**kwargs)
    else:
        def run(name: str, kwargs: dict) -> dict:
            return user_workloads.run_in_process(name, kwargs, args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        codec = codec_rows(suite, run, official)
        pipeline = pipeline_rows(suite, run, Path(tmp) / "tokens")
    out = Path(args.out)
    from plumbing.io import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, render(suite, codec, pipeline, facts, official))
    print(f"wrote {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
