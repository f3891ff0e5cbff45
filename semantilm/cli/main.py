"""The ``semantilm`` command line: the parser of every command group, and ``main``."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from semantilm.cli import (
    app_commands,
    codec_commands,
    data_commands,
    eval_commands,
    lm_commands,
    train_commands,
)
from semantilm.cli.common import CliError

EPILOG = """examples:
  semantilm info
  semantilm info --checkpoint outputs/text_to_audio/tiny_cpu
  semantilm encode examples/audio --codec tiny-random --out outputs/tokens
  semantilm encode song.wav speech.flac --codec haoheliu/SemantiCodec --token-rate 50 --out tokens/
  semantilm decode outputs/tokens --codec tiny-random --steps 10 --sampler dpmsolver++ --out outputs/wav
  semantilm tokenize --dataset synthetic --codec tiny-random --out outputs/synthetic_tokens
  semantilm tokenize --dataset data/clips --caption-column caption --out data/clip_tokens
  semantilm train --config configs/recipes/text_to_audio/tiny_cpu.yaml --override train.max_steps=10
  semantilm train --recipe codec --config configs/recipes/codec/tiny_cpu.yaml
  semantilm generate --checkpoint outputs/text_to_audio/tiny_cpu --text "a rising sweep" --seconds 2 --out gen/
  semantilm generate --checkpoint runs/continuation --audio examples/audio/tone_440hz_16k.wav --seconds 2 --out gen/
  semantilm push outputs/text_to_audio/tiny_cpu me/tiny-t2a
  semantilm eval-codec examples/audio --codec tiny-random --steps 5 --out outputs/eval/codec.json
  semantilm eval-codec --dataset synthetic --max-examples 16 --token-rate 50 --device cuda --out eval/r50.json
  semantilm eval-lm --checkpoint outputs/text_to_audio/tiny_cpu --dataset outputs/synthetic_tokens --out eval/lm.json
  semantilm eval-generation gen/ --reference data/clips --out eval/generation.json   # FAD, KL, CLAP score
  semantilm encode examples/audio --codec tiny --out outputs/tokens     # the small trained codec in the package
  semantilm export-codec outputs/tiny_codec/decoder/codec codec/pretrained/tiny --dtype float16 --name tiny
  semantilm app                             # web app on the demo's LM: text to audio, continuation, codec

Many GPUs: accelerate launch --config_file configs/accelerate/8gpu.yaml recipes/text_to_audio/train.py --config ...

exit codes: 0 done; 1 the work failed (unreadable or invalid input data, a checkpoint that does not fit);
            2 usage error (missing files, bad arguments or config keys, outputs that exist without --overwrite):
              the message says what to change; argument errors exit 2 before any model loads.
            130 interrupted (Ctrl-C); files written so far are complete. encode, decode, tokenize and train
              continue when the same command runs again. See docs/bad-input.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semantilm", description="Audio language modelling with SemantiCodec tokens.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (codec_commands, data_commands, train_commands, lm_commands, eval_commands, app_commands):
        group.add_commands(sub, EPILOG)
    return parser


def _warning_printer(command: str):
    """``warnings.showwarning`` for the command line: warnings about the user's input (``AudioWarning``:
    clipping, cut-off files; ``CaptionWarning``: characters a caption tokenizer does not know) as ``semantilm CMD: warning: message`` on stderr; others as usual."""
    usual = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if category.__name__ in ("AudioWarning", "CaptionWarning"):
            print(f"semantilm {command}: warning: {message}", file=sys.stderr)
        else:
            usual(message, category, filename, lineno, file, line)

    return show


# Commands whose rerun continues an interrupted run (finished outputs are kept, the rest is done).
RESUMING_COMMANDS = ("encode", "decode", "tokenize", "train")


def _interrupted_message(command: str) -> str:
    if command in RESUMING_COMMANDS:
        return "interrupted; the files written so far are complete: rerun the same command to continue (what is done is kept)."
    return ("interrupted; the files written so far are complete, but this command does not continue a run: run it "
            "again to start over (with --overwrite where it refuses outputs that exist).")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "keeps_freed_memory", False):  # commands that decode: the VAE's and vocoder's large
        from codec.fast import keep_freed_memory  # activations reuse their pages (codec/fast/allocator.py)

        keep_freed_memory()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from plumbing.config_file import ConfigError
    from plumbing.io import OutputPathError

    try:
        with warnings.catch_warnings():  # input warnings (clipping, cut-off files) as one line each
            warnings.showwarning = _warning_printer(args.command)
            return args.func(args)
    except (CliError, ConfigError, FileNotFoundError, FileExistsError, OutputPathError) as err:  # fixable on the command line
        print(f"semantilm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as err:
        print(f"semantilm {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"semantilm {args.command}: {_interrupted_message(args.command)}", file=sys.stderr)
        return 130
