"""Helpers shared by the command groups: the codec arguments, input file lists, decode settings, wav output."""

from __future__ import annotations

import argparse
from pathlib import Path

from codec.config import TINY, TINY_RANDOM

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")



class CliError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def add_codec_args(p: argparse.ArgumentParser, default: str | None = "haoheliu/SemantiCodec") -> None:
    p.add_argument(
        "--codec",
        default=default,
        help="codec to use: a hub repo or local folder with the official layout, a folder written by "
        f"save_pretrained, '{TINY}' (the small trained codec shipped in the package, 50 tokens/s, offline) "
        f"or '{TINY_RANDOM}' (tiny codec with random weights: tries the pipeline offline, tokens carry no meaning). "
        "Default: " + (default or "the codec recorded in the checkpoint"),
    )
    p.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100), help="official variant (default 100)")
    p.add_argument("--vocab", type=int, default=16384, choices=(4096, 8192, 16384, 32768),
                   help="official semantic vocabulary (default 16384)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache folder for downloads")


def codec_from_args(args: argparse.Namespace, decoder: bool = True):
    from semantilm.codec_api import load_codec as load

    return load(args.codec, args.token_rate, args.vocab, args.device, args.cache_dir, decoder=decoder)


def collect_files(inputs: list[str], matches, nothing_found: str) -> list[Path]:
    """Files named on the command line, plus the matching files of named folders (recursive)."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and matches(p))
            if not found:
                raise CliError(f"folder {item!r} holds no {nothing_found}.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"input {item!r} does not exist.")
    return files


def audio_files(inputs: list[str]) -> list[Path]:
    return collect_files(
        inputs, lambda p: p.suffix.lower() in AUDIO_SUFFIXES, f"audio files ({', '.join(AUDIO_SUFFIXES)})"
    )


def to_16k(wave, rate):
    from codec.audio import resample

    return resample(wave, rate, 16000)


def add_decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the codec's, 50)")
    p.add_argument("--sampler", default="ddim", choices=("ddim", "dpmsolver++"),
                   help="ddim (official) or dpmsolver++ (good with 10-25 steps); default ddim")
    p.add_argument("--seed", type=int, default=None, help="random seed (reproducible output)")


def add_dataset_args(p: argparse.ArgumentParser, audio_column: str | None, required: bool = False) -> None:
    p.add_argument("--dataset", required=required, default=None,
                   help="'synthetic', a folder saved with save_to_disk (a token data set for eval-lm), a folder "
                        "of audio files, or a hub dataset name")
    p.add_argument("--split", default="train", help="split of a DatasetDict or hub dataset (default train)")
    p.add_argument("--max-examples", type=int, default=None, help="only the first N rows")
    if audio_column is not None:
        p.add_argument("--audio-column", default=audio_column, help=f"column with the audio (default {audio_column})")


def decode_kwargs(args: argparse.Namespace) -> dict:
    import torch

    kwargs: dict = {"sampler": args.sampler}
    if args.steps is not None:
        kwargs["steps"] = args.steps
    if args.seed is not None:
        kwargs["generator"] = torch.Generator(args.device).manual_seed(args.seed)
    return kwargs


def write_wavs(model, tokens, lengths, paths, decode_kwargs: dict, num_samples: list[int] | None = None) -> None:
    """Decode a batch of token clips and write one 16-bit wav per clip (atomically)."""
    import soundfile as sf

    try:
        dec = model.decode(tokens.to(model.device), lengths.to(model.device), **decode_kwargs)
    except RuntimeError as err:
        if "no decoder" in str(err):
            raise CliError(f"{err} Or pass --tokens-only to write token files.") from None
        raise
    for i, (path, wave) in enumerate(zip(paths, dec.unbatch())):
        if num_samples is not None:
            wave = wave[: num_samples[i]]  # the original length (decoding fills whole frames)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.wav")
        sf.write(tmp, wave.float().clamp(-1, 1).cpu().numpy(), dec.sample_rate, subtype="PCM_16")
        tmp.replace(path)


def token_files(inputs: list[str]) -> list[Path]:
    from codec.token_file import SUFFIX

    return collect_files(
        inputs, lambda p: p.name.endswith(SUFFIX), f"token files (*{SUFFIX}); make them with `semantilm encode`"
    )


def eval_corpus(args: argparse.Namespace):
    """The ``--dataset`` of an eval command (see load_corpus), first ``--max-examples`` rows."""
    from codec.data.corpus import load_corpus

    if args.dataset != "synthetic" and args.dataset.startswith((".", "/", "~")) and not Path(args.dataset).exists():
        raise CliError(f"dataset {args.dataset!r} does not exist.")
    return load_corpus(args.dataset, split=args.split, max_examples=args.max_examples)
