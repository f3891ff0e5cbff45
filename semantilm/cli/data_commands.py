"""Data commands: tokenize (one process, or many under ``accelerate launch``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from semantilm.cli.common import (
    CliError,
    add_codec_args,
    codec_from_args,
    codec_source,
    nonnegative_int,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.data.tokenize_settings import TokenizeSettings


def _process(args: argparse.Namespace) -> tuple[int, int, str]:
    """(rank, world size, device) of this process; ``accelerate.PartialState`` under ``accelerate launch``."""
    import os

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 or "ACCELERATE_USE_CPU" in os.environ
    if not launched and args.device != "auto":
        return 0, 1, args.device
    import torch
    from accelerate import PartialState

    cpu = (args.device == "cpu" or not torch.cuda.is_available()
           or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"))
    state = PartialState(cpu=cpu)
    device = str(state.device) if args.device == "auto" else args.device
    return state.process_index, state.num_processes, device


def _settings(args: argparse.Namespace, device: str) -> TokenizeSettings:
    """The command line's ``TokenizeSettings``."""
    from codec.data import SyntheticSoundConfig
    from semantilm.data.tokenize_settings import TokenizeSettings

    return TokenizeSettings(
        split=args.split, audio_column=args.audio_column, caption_column=args.caption_column,
        sample_rate=args.sample_rate, max_examples=args.max_examples, streaming=args.streaming,
        synthetic=SyntheticSoundConfig(num_examples=args.synthetic_examples, seconds=args.synthetic_seconds),
        batch_size=args.batch_size, shard_size=args.shard_size, num_workers=args.num_workers, device=device,
        dtype=args.dtype, on_error=args.on_error,
    )


def cmd_tokenize(args: argparse.Namespace) -> int:
    import warnings

    from semantilm.data.corpus_tokens import TokenizeWarning, summary_line, tokenize_corpus

    source = args.input if args.input is not None else args.dataset
    if source is None or (args.input is not None and args.dataset is not None):
        raise CliError("give the input once: INPUT or --dataset INPUT.")
    rank, world, device = _process(args)
    args.device = device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TokenizeWarning)  # the summary line counts the failures
        result = tokenize_corpus(
            source, lambda: codec_from_args(args, decoder=False), args.out, settings=_settings(args, device),
            rank=rank, world_size=world, progress=False if args.no_progress else None,
            codec_source=codec_source(args),
        )
    if rank == 0:
        if result.manifest is None:  # another process is finishing the last shards; it writes the manifest
            print(f"process 1 of {world} done; the last process to finish writes {args.out}/semantilm_tokens.json")
        else:
            print(summary_line(result))
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    p = sub.add_parser(
        "tokenize", help="tokenise a corpus into a folder of Parquet token shards (resumable, multi-process)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog,
        description="Many GPUs or machines: accelerate launch --multi_gpu --num_processes N "
                    "$(command -v semantilm) tokenize INPUT --out DIR; CPU processes: accelerate launch "
                    "--config_file configs/accelerate/cpu.yaml ... (input shard k goes to process k % N; "
                    "a run resumes with any number of processes). Read the result with "
                    "semantilm.load_token_dataset(DIR) or datasets.load_dataset('parquet', data_dir=DIR). "
                    "Guide: docs/tokenize.md.",
    )
    p.add_argument("input", nargs="?", default=None,
                   help="a folder of audio files (metadata.csv / metadata.jsonl with file_name, or .txt captions "
                        "beside the files), .tar shards (a file, a folder or a glob), a folder saved with "
                        "save_to_disk, Parquet / Arrow files, 'synthetic' or a hub dataset name")
    p.add_argument("--dataset", default=None, help="the same as INPUT")
    p.add_argument("--out", required=True, help="token folder (Parquet shards + semantilm_tokens.json)")
    p.add_argument("--audio-column", default="audio", help="column with the audio (default audio)")
    p.add_argument("--caption-column", default=None,
                   help="column with the captions, written as 'caption' (default: columns are carried as they are)")
    p.add_argument("--sample-rate", type=positive_int, default=None,
                   help="sampling rate of audio cells that are bare arrays of samples (other cells carry theirs)")
    p.add_argument("--split", default="train", help="split of a DatasetDict or hub dataset (default train)")
    p.add_argument("--streaming", action="store_true", help="stream a hub dataset (datasets IterableDataset)")
    p.add_argument("--max-examples", type=positive_int, default=None, help="only the first N inputs")
    p.add_argument("--batch-size", type=positive_int, default=16, help="clips per codec call (default 16)")
    p.add_argument("--shard-size", type=positive_int, default=512,
                   help="inputs per shard (default 512; a tar is one shard)")
    p.add_argument("--num-workers", type=nonnegative_int, default=None,
                   help="DataLoader processes reading audio (default: 0 on the CPU, where the encoder's threads "
                        "use every core, 2 beside a GPU; 0 reads in this process)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="encoder precision (default float32; half precisions on CUDA only)")
    p.add_argument("--on-error", default="skip", choices=("skip", "stop"),
                   help="skip: record bad inputs in failures.jsonl and go on (default); stop: exit at the first")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: one on a terminal, none off one)")
    p.add_argument("--synthetic-examples", type=positive_int, default=64, help="size of the synthetic set (default 64)")
    p.add_argument("--synthetic-seconds", type=positive_float, default=2.0,
                   help="clip length of the synthetic set (default 2)")
    add_codec_args(p)
    for action in p._actions:
        if action.dest == "device":
            action.help = "torch device; default auto: this process's device (accelerate), else cuda if there is one"
    p.set_defaults(func=cmd_tokenize, device="auto")
