"""Argument helpers shared by the command groups (codec, data set and decode arguments), ``CliError``
and printing helpers. Nothing heavy at module level: ``semantilm --help`` stays instant."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codec.config import OFFICIAL_TOKEN_RATES, OFFICIAL_VOCAB_SIZES, TINY, TINY_RANDOM
from plumbing.io import check_output_path
from semantilm.codec_api import DECODER_DTYPES

__all__ = ["CliError", "check_output_path"]  # and the argument helpers below

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from codec.sampling import DecodeSettings
    from semantilm.generation.lm_speed import LMSpeed


class CliError(Exception):
    """A user error: printed without a traceback, exit code 2."""


# ----- number arguments: argparse types with the wording of plumbing.checks (exit 2 before any work) ---------
def int_arg(minimum: int | None = None, maximum: int | None = None):
    """An ``argparse`` type: an integer in [minimum, maximum], else ``must be an integer >= 1, got '-1'``."""
    from plumbing.checks import check_int, int_requirement

    def parse(text: str) -> int:
        try:
            return check_int(int(text), "value", minimum=minimum, maximum=maximum)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{int_requirement(minimum, maximum)}, got {text!r}") from None

    parse.__name__ = "integer"  # what argparse calls the type in its own messages
    return parse


def float_arg(minimum: float | None = None, maximum: float | None = None, *, above: bool = False):
    """An ``argparse`` type: a finite number in range (``above``: strictly above ``minimum``)."""
    from plumbing.checks import check_float, float_requirement

    def parse(text: str) -> float:
        try:
            return check_float(float(text), "value", minimum=minimum, maximum=maximum, above=above)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{float_requirement(minimum, maximum, above=above)}, got {text!r}") from None

    parse.__name__ = "number"
    return parse


positive_int = int_arg(minimum=1)  # batch sizes, counts, steps of training
nonnegative_int = int_arg(minimum=0)  # top-k (0 = off), worker processes
seed_int = int_arg(minimum=0, maximum=2**32 - 1)  # seeds of torch and numpy alike
steps_int = int_arg(minimum=1, maximum=1000)  # diffusion decoder steps (the schedule has 1000)
positive_float = float_arg(minimum=0, above=True)  # seconds, temperature, sizes
nonnegative_float = float_arg(minimum=0)  # guidance scales (1 = off, 0 = unconditional)


def add_overwrite_arg(p: argparse.ArgumentParser, what: str = "output files") -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} that already exist (default: refuse, before any work, and write nothing)")


def add_codec_args(p: argparse.ArgumentParser, default: str | None = "haoheliu/SemantiCodec",
                   recorded_in: str = "the checkpoint") -> None:
    p.add_argument(
        "--codec",
        default=default,
        help="codec to use: a hub repo or local folder with the official layout, a folder written by "
        f"save_pretrained, '{TINY}' (the small codec shipped in the package, 50 tokens/s, offline; for trying the "
        "pipeline, not for real audio: trained only on synthetic sounds, it brings tones back at the right pitch "
        "but cannot carry speech, STOI 0.25 and SI-SDR -42 dB on speech, see README) "
        f"or '{TINY_RANDOM}' (random weights: tries the pipeline offline; tokens carry no meaning and every input "
        "decodes to a constant level). "
        "Default: " + (default or f"the codec recorded in {recorded_in}"),
    )
    p.add_argument("--token-rate", type=int, default=None, choices=OFFICIAL_TOKEN_RATES,
                   help=f"official variant's tokens/s (default 100; '{TINY_RANDOM}' takes one too). A codec whose "
                        f"files fix its rate ('{TINY}', save_pretrained folders) refuses another")
    p.add_argument("--vocab", type=int, default=None, choices=OFFICIAL_VOCAB_SIZES,
                   help="official semantic vocabulary (default 16384); codecs whose files fix it refuse another")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache folder for downloads")


def check_codec_choice(args: argparse.Namespace) -> None:
    """A ``CliError`` (before any model loads) when ``--token-rate`` / ``--vocab`` ask ``--codec`` for a
    variant it does not have: a codec whose files fix them takes only its own, ``tiny-random`` no ``--vocab``."""
    from codec.checkpoints import check_codec_choice as check

    if args.codec is None:
        return
    if args.codec == TINY_RANDOM and args.vocab is not None:
        raise CliError(f"--codec {TINY_RANDOM} has a semantic vocabulary of 64 and no other; --vocab {args.vocab} "
                       "chooses among official checkpoints only: drop it.")
    try:
        check(args.codec, args.token_rate, args.vocab)
    except ValueError as err:
        raise CliError(str(err)) from None


def codec_source(args: argparse.Namespace) -> dict[str, Any]:
    """How to load the ``--codec`` of ``args`` again (name, token rate, vocabulary; defaults filled in, None
    where the codec's files fix them), as recorded beside what it made."""
    from codec.checkpoints import codec_options

    token_rate, vocab = codec_options(args.codec, args.token_rate, args.vocab)
    return {"name": args.codec, "token_rate": token_rate, "vocab": vocab}


def codec_from_args(args: argparse.Namespace, decoder: bool = True) -> Any:
    """The codec that ``--codec`` / ``--token-rate`` / ``--vocab`` / ``--device`` name."""
    from semantilm.codec_api import load_codec

    check_codec_choice(args)
    return load_codec(args.codec, args.token_rate, args.vocab, args.device, args.cache_dir, decoder=decoder,
                      decoder_dtype=getattr(args, "decoder_dtype", None) if decoder else None)


def add_decode_args(p: argparse.ArgumentParser) -> None:
    p.set_defaults(keeps_freed_memory=True)  # a command that decodes (see semantilm.cli.main)
    p.add_argument("--steps", type=steps_int, default=None,
                   help="diffusion steps, 1-1000 (default: the codec's, 50; 4 with --sampler distilled)")
    from codec.sampling import DECODE_SAMPLERS

    p.add_argument("--sampler", default="ddim", choices=DECODE_SAMPLERS,
                   help="ddim (official), a deterministic multistep sampler (good with 10-25 steps; "
                        "benchmarks/decoder_samplers.py compares them), or distilled: the codec's distilled "
                        "decoder with --steps one of its step counts (e.g. 4; the tiny codec has one); default ddim")
    p.add_argument("--seed", type=seed_int, default=None, help="random seed (reproducible output)")
    p.add_argument("--decoder-dtype", default="float32", choices=DECODER_DTYPES,
                   help="precision of the diffusion decoder's UNet and VAE (the vocoder stays float32): bfloat16 / "
                        "float16 for GPUs, bfloat16 also for CPUs with bf16 instructions (AVX512-BF16 or AMX: the VAE "
                        "about 2x faster); the waveform moves by about 1 %% of its norm; default float32")


def decode_settings(args: argparse.Namespace) -> DecodeSettings:
    """``--sampler`` / ``--steps`` as the decoder's settings (a bad value is a usage error)."""
    from codec.sampling import DecodeSettings

    try:
        if args.steps is None:  # the distilled decoder's default: 4 steps (50 are for the teacher)
            return DecodeSettings(sampler=args.sampler, **({"steps": 4} if args.sampler == "distilled" else {}))
        return DecodeSettings(sampler=args.sampler, steps=args.steps)
    except (ValueError, TypeError) as err:
        raise CliError(f"{err} (--sampler / --steps)") from None


def lm_speed(args: argparse.Namespace) -> LMSpeed:
    """``--kv-cache`` / ``--compile`` as ``LMSpeed`` (``--compile`` alone is a usage error)."""
    from semantilm.generation.lm_speed import LMSpeed

    if args.compile and args.kv_cache != "static":
        raise CliError("--compile needs --kv-cache static: with a dynamic cache every step has new shapes and "
                       "would recompile.")
    return LMSpeed(kv_cache=args.kv_cache, compile=args.compile)


def decode_generator(args: argparse.Namespace) -> torch.Generator | None:
    """A generator on ``--device`` seeded with ``--seed`` (None without a seed)."""
    if args.seed is None:
        return None
    import torch

    return torch.Generator(args.device).manual_seed(args.seed)


def add_dataset_args(p: argparse.ArgumentParser, audio_column: str | None, required: bool = False) -> None:
    p.add_argument("--dataset", required=required, default=None,
                   help="'synthetic', a folder saved with save_to_disk (a token data set for eval-lm), a folder "
                        "of audio files, or a hub dataset name")
    p.add_argument("--split", default="train", help="split of a DatasetDict or hub dataset (default train)")
    p.add_argument("--max-examples", type=positive_int, default=None, help="only the first N rows")
    if audio_column is not None:
        p.add_argument("--audio-column", default=audio_column, help=f"column with the audio (default {audio_column})")


def check_local_dataset(dataset: str) -> None:
    """A ``--dataset`` that looks like a local path must exist."""
    if dataset != "synthetic" and dataset.startswith((".", "/", "~")) and not Path(dataset).expanduser().exists():
        raise CliError(f"dataset {dataset!r} does not exist.")


def print_rows(rows: list[tuple[str, str]]) -> None:
    """``name  value`` lines, names padded to one column."""
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
