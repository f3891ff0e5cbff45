"""The ``semantilm`` command line.

Each sub-command is one function taking the parsed arguments; heavy imports happen inside
them so that ``semantilm --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
RANDOM_TINY = "tiny-random"

EPILOG = """examples:
  semantilm info
  semantilm encode examples/audio --codec tiny-random --out outputs/tokens
  semantilm encode song.wav speech.flac --codec haoheliu/SemantiCodec --token-rate 50 --out tokens/
"""


class CliError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def _add_codec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--codec",
        default="haoheliu/SemantiCodec",
        help="codec to use: a hub repo or local folder with the official layout, a folder written by "
        f"save_pretrained, or '{RANDOM_TINY}' (tiny codec with random weights: tries the pipeline offline, "
        "tokens carry no meaning). Default: %(default)s",
    )
    p.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100), help="official variant (default 100)")
    p.add_argument("--vocab", type=int, default=16384, choices=(4096, 8192, 16384, 32768),
                   help="official semantic vocabulary (default 16384)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache folder for downloads")


def load_codec(args: argparse.Namespace, decoder: bool = True):
    import torch

    from codec import SemantiCodec, SemantiCodecConfig

    if args.codec == RANDOM_TINY:
        torch.manual_seed(0)
        model = SemantiCodec(SemantiCodecConfig.tiny(args.token_rate))
    else:
        model = SemantiCodec.from_pretrained(
            args.codec, token_rate=args.token_rate, semantic_vocab_size=args.vocab,
            cache_dir=args.cache_dir, load_decoder=decoder,
        )
    return model.to(args.device)


def _audio_files(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise CliError(f"folder {item!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"input {item!r} does not exist.")
    return files


def cmd_info(args: argparse.Namespace) -> int:
    from codec import SemantiCodecConfig

    print(f"{'variant':<24}{'tokens/s':>9}{'frames/s':>9}{'sem. vocab':>11}{'kbps':>7}")
    for rate in (25, 50, 100):
        for vocab in (4096, 8192, 16384, 32768):
            c = SemantiCodecConfig.official(rate, vocab)
            print(f"{c.name:<24}{rate:>9}{c.frame_rate:>9g}{vocab:>11}{c.bitrate / 1000:>7.2f}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from codec.audio import load_audio
    from codec.token_file import SUFFIX, TokenFile, save_tokens

    files = _audio_files(args.inputs)
    model = load_codec(args, decoder=False)
    out_dir = Path(args.out)
    written = 0
    for start in tqdm(range(0, len(files), args.batch_size), desc="encode", unit="batch", disable=len(files) < 2):
        batch = files[start : start + args.batch_size]
        clips, rates = [], []
        for path in batch:
            wave, rate = load_audio(path, mono=args.mono)
            clips.append(wave)
            rates.append(rate)
        waves = [_to_16k(w, r) for w, r in zip(clips, rates)]
        result = model.encode(waves, sample_rate=model.sample_rate, batch_size=args.batch_size)
        for path, wave, rate, tokens in zip(batch, waves, rates, result.unbatch()):
            record = TokenFile(
                tokens=tokens.cpu(), codec_variant=model.variant, token_rate=model.config.token_rate,
                semantic_vocab_size=model.semantic_vocab_size, acoustic_vocab_size=model.acoustic_vocab_size,
                num_samples=wave.numel(), source_sample_rate=rate, source=str(path),
            )
            save_tokens(out_dir / (path.stem + SUFFIX), record)
            written += 1
    print(f"wrote {written} token files to {out_dir} ({model.variant}, {model.config.token_rate} tokens/s)")
    return 0


def _to_16k(wave, rate):
    from codec.audio import resample

    return resample(wave, rate, 16000)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semantilm", description="Audio language modelling with SemantiCodec tokens.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="list the SemantiCodec variants and their bitrates")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("encode", help="encode audio files or folders to token files (.tokens.npz)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the token files")
    p.add_argument("--batch-size", type=int, default=8, help="clips per batch (default 8)")
    p.add_argument("--mono", default="first", choices=("first", "mean"),
                   help="multi-channel audio: first channel (official) or mean (default first)")
    _add_codec_args(p)
    p.set_defaults(func=cmd_encode)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except CliError as err:
        print(f"semantilm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"semantilm {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
