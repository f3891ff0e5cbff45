"""Data commands: tokenize."""

from __future__ import annotations

import argparse

from semantilm.cli.common import add_codec_args, codec_from_args


def cmd_tokenize(args: argparse.Namespace) -> int:
    from codec.data.synthetic import SyntheticSoundConfig
    from semantilm.data.corpus_tokens import tokenize_corpus

    result = tokenize_corpus(
        args.dataset, lambda: codec_from_args(args, decoder=False), args.out, split=args.split,
        audio_column=args.audio_column, caption_column=args.caption_column, max_examples=args.max_examples,
        synthetic=SyntheticSoundConfig(num_examples=args.synthetic_examples, seconds=args.synthetic_seconds),
        batch_size=args.batch_size, shard_size=args.shard_size,
        codec_source={"name": args.codec, "token_rate": args.token_rate, "vocab": args.vocab},
    )
    print(f"wrote {len(result.dataset)} token rows ({result.num_frames} frames, {result.codec_variant}) to {result.out_dir}")
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
