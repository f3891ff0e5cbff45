"""Codec commands: info, encode, decode, eval-codec, export-codec."""

from __future__ import annotations

import argparse

from semantilm.cli.common import (
    CliError,
    add_codec_args,
    add_dataset_args,
    add_decode_args,
    add_overwrite_arg,
    check_codec_choice,
    check_local_dataset,
    check_output_path,
    codec_from_args,
    decode_generator,
    decode_settings,
    float_arg,
    positive_float,
    positive_int,
    print_rows,
)

EMBEDDED_NOTE = """
The embedded codecs are for trying the pipeline offline, not for real audio: tiny was trained only on
synthetic sounds; it brings tones back at the right pitch but cannot carry speech (STOI 0.25, SI-SDR
-42 dB on espeak-ng speech; benchmarks/codec_speech.py). tiny-random (random weights, --token-rate
25/50/100, not listed) decodes every input to a constant level. For speech and music use the official
variants above (--codec haoheliu/SemantiCodec --token-rate R --vocab V)."""


def cmd_info(args: argparse.Namespace) -> int:
    if args.checkpoint:
        from semantilm.models.hub import checkpoint_summary

        print_rows(checkpoint_summary(args.checkpoint))
        return 0
    from codec.checkpoints import EMBEDDED_CODECS
    from codec.config import OFFICIAL_TOKEN_RATES, OFFICIAL_VOCAB_SIZES, SemantiCodecConfig

    print(f"{'variant':<24}{'tokens/s':>9}{'frames/s':>9}{'sem. vocab':>11}{'kbps':>7}")
    for rate in OFFICIAL_TOKEN_RATES:
        for vocab in OFFICIAL_VOCAB_SIZES:
            c = SemantiCodecConfig.official(rate, vocab)
            print(f"{c.name:<24}{rate:>9}{c.frame_rate:>9g}{vocab:>11}{c.bitrate / 1000:>7.2f}")
    for name, folder in EMBEDDED_CODECS.items():  # shipped in the package, offline
        if (folder / "config.json").is_file():
            c = SemantiCodecConfig.from_json_file(folder / "config.json")
            print(f"{name + ' (embedded)':<24}{c.token_rate:>9}{c.frame_rate:>9g}{c.semantic_codebook_size:>11}"
                  f"{c.bitrate / 1000:>7.2f}")
    print(EMBEDDED_NOTE)
    return 0


def expected_variant(args: argparse.Namespace) -> str | None:
    """The variant name of the codec that ``--codec`` / ``--token-rate`` / ``--vocab`` load, known before it loads
    (None when its folder cannot tell: then the loaded codec's variant decides which outputs are kept)."""
    from codec.checkpoints import variant_name

    try:
        return variant_name(args.codec, args.token_rate, args.vocab)
    except (ValueError, OSError):  # an unusual folder: the loaded codec's variant is compared instead
        return None


def _kept_note(kept: int, what: str) -> str:
    return f"; kept {kept} {what} that an earlier run of this command finished" if kept else ""


def cmd_encode(args: argparse.Namespace) -> int:
    from codec.compress import compress, planned_outputs

    check_codec_choice(args)
    variant = expected_variant(args)
    plan = planned_outputs(args.inputs, args.out, "encode", args.overwrite, mono=args.mono,
                           variant=variant)  # before the codec loads
    if not plan.pending and variant is not None:
        print(f"nothing to encode: the {len(plan.targets)} token files in {args.out} are there from an earlier run "
              "of this command (--overwrite encodes them again)")
        return 0
    model = codec_from_args(args, decoder=False)
    written = compress(model, args.inputs, args.out, batch_size=args.batch_size, mono=args.mono,
                       overwrite=args.overwrite)
    print(f"wrote {len(written)} token files to {args.out} ({model.variant}, {model.config.token_rate} tokens/s)"
          + _kept_note(len(plan.targets) - len(written), "token files"))
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from codec.compress import VariantMismatchError, decompress, find_token_files, planned_outputs
    from codec.token_file import load_tokens

    files = find_token_files(args.inputs)
    for file in files:  # a damaged token file is named before anything else (exit 1)
        load_tokens(file)
    settings = decode_settings(args)
    check_codec_choice(args)  # an explicit --codec; the codec the token files name is checked when it loads
    if args.codec is None:  # the codec the token files name (official variants and embedded codecs)
        from codec.checkpoints import codec_for_token_files

        try:
            name, token_rate, vocab = codec_for_token_files(files)
        except ValueError as err:
            raise CliError(f"{err} Pass it with --codec.") from None
        for flag, asked, theirs in (("--token-rate", args.token_rate, token_rate), ("--vocab", args.vocab, vocab)):
            if asked is not None and theirs is not None and asked != theirs:
                raise CliError(f"the token files were made by codec {name!r} with {flag} {theirs}, not {asked}: "
                               f"drop {flag} to decode them with their codec, or name another with --codec.")
        args.codec = name
        args.token_rate = args.token_rate if token_rate is None else token_rate
        args.vocab = args.vocab if vocab is None else vocab
    variant = expected_variant(args)
    plan = planned_outputs(args.inputs, args.out, "decode", args.overwrite, settings=settings, seed=args.seed,
                           decoder_dtype=args.decoder_dtype, variant=variant)  # before the codec loads
    if not plan.pending and variant is not None:
        print(f"nothing to decode: the {len(plan.targets)} wav files in {args.out} are there from an earlier run "
              "of this command (--overwrite decodes them again)")
        return 0
    model = codec_from_args(args, decoder=True)
    try:
        written = decompress(model, args.inputs, args.out, settings, batch_size=args.batch_size,
                             generator=decode_generator(args), overwrite=args.overwrite)
    except VariantMismatchError as err:
        raise CliError(f"{err} (--codec / --token-rate / --vocab choose the codec)") from None
    print(f"wrote {len(written)} wav files to {args.out} ({model.variant}, {model.sample_rate} Hz)"
          + _kept_note(len(plan.targets) - len(written), "wav files"))
    return 0


def cmd_eval_codec(args: argparse.Namespace) -> int:
    from codec.compress import find_audio_files
    from codec.data import load_corpus
    from codec.eval import dataset_clips, evaluate_codec, file_clips
    from plumbing.io import refuse_existing

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give audio files / folders or --dataset, not both and not neither.")
    check_output_path(args.out, "file", "--out")  # before any work: the scores are written last
    refuse_existing([args.out], args.overwrite)
    check_codec_choice(args)
    if args.inputs:
        clips = file_clips(find_audio_files(args.inputs), mono=args.mono)
    else:
        check_local_dataset(args.dataset)
        corpus = load_corpus(args.dataset, split=args.split, max_examples=args.max_examples)
        clips = dataset_clips(corpus, args.audio_column, args.name_column)
    settings = decode_settings(args)
    model = codec_from_args(args, decoder=True)
    result = evaluate_codec(model, clips, metrics=args.metrics, batch_size=args.batch_size, settings=settings,
                            generator=decode_generator(args))
    result.settings.update(seed=args.seed, source=args.dataset or args.inputs, codec=args.codec)
    print(result.table(per_clip=args.per_clip))
    print(f"wrote {result.save_json(args.out)}")
    return 0


def cmd_export_codec(args: argparse.Namespace) -> int:
    from codec.training import export_codec

    check_output_path(args.out, "folder", "output folder")
    out = export_codec(args.source, args.out, dtype=args.dtype, name=args.name, stages=args.stages,
                       command=args.command_line, max_mb=args.max_mb, vocoder_from=args.vocoder_from,
                       cfg_scale=args.cfg_scale)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"exported {args.source} -> {out} ({args.dtype}, {size:.2f} MB, notes in {out / 'TRAINING.md'})")
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    from codec.eval import METRICS  # stdlib and json only: --help stays instant

    p = sub.add_parser("info", help="list the SemantiCodec variants and their bitrates, or an LM checkpoint's layout",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--checkpoint", default=None,
                   help="LM checkpoint folder or hub id: print its token layout, pattern and codec variant")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("encode", help="encode audio files or folders to token files (.tokens.npz)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the token files")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per batch (default 8)")
    p.add_argument("--mono", default="first", choices=("first", "mean"),
                   help="multi-channel audio: first channel (official) or mean (default first)")
    add_overwrite_arg(p, "token files")
    add_codec_args(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode token files (.tokens.npz) to wav files",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("inputs", nargs="+", help="token files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the wav files (16 kHz, original length)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per decoder call (default 8)")
    add_overwrite_arg(p, "wav files")
    add_decode_args(p)
    add_codec_args(p, default=None, recorded_in="the token files (official variants and embedded codecs)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("eval-codec", help="encode + decode audio and score the reconstructions (mel, MR-STFT, "
                       "SI-SDR, PESQ, STOI, ViSQOL); table + JSON", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("inputs", nargs="*", help="audio files or folders (searched recursively); or use --dataset")
    p.add_argument("--out", required=True, help="JSON file for the scores (per clip and mean)")
    p.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS),
                   help="metrics to compute (default all; PESQ, STOI and ViSQOL need pip install "
                        "'semantilm[eval]' and are reported as not measured without it)")
    p.add_argument("--per-clip", action="store_true", help="print one table row per clip")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per encode / decode call (default 8)")
    p.add_argument("--mono", default="first", choices=("first", "mean"), help="multi-channel files: first channel or mean")
    add_dataset_args(p, "audio")
    p.add_argument("--name-column", default=None, help="column naming each row in the per-clip scores")
    add_overwrite_arg(p, "the JSON file")
    add_decode_args(p)
    add_codec_args(p)
    p.set_defaults(func=cmd_eval_codec)

    p = sub.add_parser("export-codec", help="write a trained codec as a compact save_pretrained folder (fp16) "
                       "with TRAINING.md", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("source", help="save_pretrained codec folder, or a codec stage's output dir (its codec/)")
    p.add_argument("out", help="folder to write (config.json, model.safetensors, TRAINING.md)")
    p.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"),
                   help="storage dtype of the weights; loading casts them to float32 (default float16)")
    p.add_argument("--name", default=None, help="variant name of the exported codec (default: keep the source's)")
    p.add_argument("--stages", nargs="+", default=[], metavar="DIR",
                   help="stage output dirs whose steps, losses and wall time TRAINING.md summarises")
    p.add_argument("--command", dest="command_line", default=None, help="reproduce command quoted in TRAINING.md")
    p.add_argument("--max-mb", type=positive_float, default=None, help="fail when the weights are larger than this")
    p.add_argument("--vocoder-from", default=None, metavar="DIR",
                   help="vocoder stage output (or codec folder) whose vocoder replaces the source's")
    p.add_argument("--cfg-scale", type=float_arg(minimum=1), default=None,
                   help="the variant's default guidance scale for decode (default: keep the source's)")
    p.set_defaults(func=cmd_export_codec)
