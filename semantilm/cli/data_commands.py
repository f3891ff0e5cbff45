"""Data commands: tokenize."""

from __future__ import annotations

import argparse
from pathlib import Path

from semantilm.cli.common import CliError, add_codec_args, codec_from_args


def cmd_tokenize(args: argparse.Namespace) -> int:
    import shutil

    from codec.data.corpus import SYNTHETIC, load_corpus
    from codec.data.synthetic import SyntheticSoundConfig
    from semantilm.codec_api import codec_description
    from semantilm.data.token_dataset import is_token_dataset, save_token_dataset
    from semantilm.data.tokenize import encode_audio_dataset

    if args.dataset != SYNTHETIC and args.dataset.startswith((".", "/", "~")) and not Path(args.dataset).exists():
        raise CliError(f"dataset {args.dataset!r} does not exist.")
    synthetic = SyntheticSoundConfig(num_examples=args.synthetic_examples, seconds=args.synthetic_seconds)
    corpus = load_corpus(args.dataset, split=args.split, synthetic=synthetic, max_examples=args.max_examples)
    if is_token_dataset(corpus):
        raise CliError(f"dataset {args.dataset!r} already holds tokens; train on it directly.")
    for flag, column in (("--audio-column", args.audio_column), ("--caption-column", args.caption_column)):
        if column is not None and column not in corpus.column_names:
            raise CliError(f"{flag} {column!r} is not a column of {args.dataset!r}; it has {corpus.column_names}.")
    model = codec_from_args(args, decoder=False)
    out = Path(args.out)
    cache = out / ".shards"  # finished shards survive an interruption: rerun the command to resume
    tokens = encode_audio_dataset(
        corpus, model, audio_column=args.audio_column, caption_column=args.caption_column,
        batch_size=args.batch_size, cache_dir=cache, shard_size=args.shard_size,
    )
    info = codec_description(model)
    info["source"] = {"name": args.codec, "token_rate": args.token_rate, "vocab": args.vocab}
    save_token_dataset(tokens, out, info)
    shutil.rmtree(cache, ignore_errors=True)
    frames = sum(tokens["num_frames"])
    print(f"wrote {len(tokens)} token rows ({frames} frames, {model.variant}) to {out}")
    return 0



def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    p = sub.add_parser("tokenize", help="tokenise a datasets corpus into a token data set (resumable)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--dataset", required=True,
                   help="'synthetic' (built-in captioned sounds), a folder saved with save_to_disk, a folder of "
                        "audio files (captions from .txt files beside them), or a hub dataset name")
    p.add_argument("--out", required=True, help="folder for the token data set (load it with datasets.load_from_disk)")
    p.add_argument("--audio-column", default="audio", help="column with the audio (default audio)")
    p.add_argument("--caption-column", default=None, help="column with captions to keep (default: none)")
    p.add_argument("--split", default="train", help="split of a DatasetDict or hub dataset (default train)")
    p.add_argument("--max-examples", type=int, default=None, help="only the first N rows")
    p.add_argument("--batch-size", type=int, default=16, help="clips per codec call (default 16)")
    p.add_argument("--shard-size", type=int, default=1000, help="rows per resumable shard (default 1000)")
    p.add_argument("--synthetic-examples", type=int, default=64, help="size of the synthetic set (default 64)")
    p.add_argument("--synthetic-seconds", type=float, default=2.0, help="clip length of the synthetic set (default 2)")
    add_codec_args(p)
    p.set_defaults(func=cmd_tokenize)
