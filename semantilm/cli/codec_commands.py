"""Codec commands: info, encode, decode, eval-codec, export-codec."""

from __future__ import annotations

import argparse
from pathlib import Path

from semantilm.cli.common import (
    CliError,
    add_codec_args,
    add_dataset_args,
    add_decode_args,
    audio_files,
    codec_from_args,
    decode_kwargs,
    eval_corpus,
    to_16k,
    token_files,
    write_wavs,
)


def cmd_info(args: argparse.Namespace) -> int:
    if args.checkpoint:
        return _checkpoint_info(args.checkpoint)
    from codec import SemantiCodecConfig

    print(f"{'variant':<24}{'tokens/s':>9}{'frames/s':>9}{'sem. vocab':>11}{'kbps':>7}")
    for rate in (25, 50, 100):
        for vocab in (4096, 8192, 16384, 32768):
            c = SemantiCodecConfig.official(rate, vocab)
            print(f"{c.name:<24}{rate:>9}{c.frame_rate:>9g}{vocab:>11}{c.bitrate / 1000:>7.2f}")
    from codec.checkpoints import EMBEDDED_CODECS

    for name, folder in EMBEDDED_CODECS.items():  # shipped in the package, offline
        if (folder / "config.json").is_file():
            c = SemantiCodecConfig.from_json_file(folder / "config.json")
            print(f"{name + ' (embedded)':<24}{c.token_rate:>9}{c.frame_rate:>9g}{c.semantic_codebook_size:>11}"
                  f"{c.bitrate / 1000:>7.2f}")
    return 0



def _checkpoint_info(checkpoint: str) -> int:
    import json

    from semantilm.models.hub import load_codec_reference, resolve_checkpoint
    from semantilm.tokens.layout import LAYOUT_FILE, AudioTokenLayout
    from semantilm.tokens.tokenizer import TOKENIZER_INFO_FILE

    folder = resolve_checkpoint(checkpoint)
    if not (folder / LAYOUT_FILE).is_file():
        raise CliError(f"{checkpoint!r} has no {LAYOUT_FILE}: it is not a semantilm LM checkpoint.")
    layout = AudioTokenLayout.from_pretrained(folder)
    rows = [("checkpoint", str(folder))]
    if (folder / "adapter_config.json").is_file():
        adapter = json.loads((folder / "adapter_config.json").read_text())
        rows.append(("model", f"LoRA adapter (r={adapter.get('r')}) on {adapter.get('base_model_name_or_path')}"))
    elif (folder / "config.json").is_file():
        cfg = json.loads((folder / "config.json").read_text())
        rows.append(("model", f"{cfg.get('model_type')}: {cfg.get('num_hidden_layers')} layers, "
                              f"hidden size {cfg.get('hidden_size')}, context {cfg.get('max_position_embeddings')}"))
    rows.append(("pattern", layout.pattern))
    rows.append(("codec", f"{layout.codec_variant} ({layout.frame_rate:g} frames/s = {layout.tokens_per_second:g} "
                          f"LM tokens/s, {layout.sample_rate} Hz)"))
    reference = load_codec_reference(folder)
    rows.append(("decode with", f"--codec {reference.name} --token-rate {reference.token_rate} --vocab {reference.vocab}"
                 if reference else "unknown (no semantilm_codec.json): pass --codec"))
    specials = ", ".join(f"{name}={layout.special_id(name)}" for name in layout.special_tokens)
    rows += [
        ("text ids", f"[0, {layout.text_vocab_size})"),
        ("special ids", f"[{layout.special_offset}, {layout.semantic_offset}): {specials}"),
        ("semantic ids", f"[{layout.semantic_offset}, {layout.acoustic_offset}) ({layout.semantic_vocab_size})"),
        ("acoustic ids", f"[{layout.acoustic_offset}, {layout.vocab_size}) ({layout.acoustic_vocab_size})"),
        ("vocabulary", str(layout.vocab_size)),
    ]
    if (folder / TOKENIZER_INFO_FILE).is_file():
        tok = json.loads((folder / TOKENIZER_INFO_FILE).read_text())
        rows.append(("text tokenizer", f"{tok.get('kind')}{', bos first' if tok.get('add_bos') else ''}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from codec.audio import load_audio
    from codec.token_file import SUFFIX, TokenFile, save_tokens

    files = audio_files(args.inputs)
    model = codec_from_args(args, decoder=False)
    out_dir = Path(args.out)
    written = 0
    for start in tqdm(range(0, len(files), args.batch_size), desc="encode", unit="batch", disable=len(files) < 2):
        batch = files[start : start + args.batch_size]
        clips, rates = [], []
        for path in batch:
            wave, rate = load_audio(path, mono=args.mono)
            clips.append(wave)
            rates.append(rate)
        waves = [to_16k(w, r) for w, r in zip(clips, rates)]
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


def cmd_decode(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from codec.token_file import SUFFIX, load_tokens

    files = token_files(args.inputs)
    records = [load_tokens(f) for f in files]
    model = codec_from_args(args, decoder=True)
    for path, record in zip(files, records):
        if record.codec_variant != model.variant:
            raise CliError(
                f"{path} holds tokens of codec {record.codec_variant!r} ({record.token_rate} tokens/s) but --codec gives "
                f"{model.variant!r}; decode with the codec that made them (--codec / --token-rate / --vocab)."
            )
    out = Path(args.out)
    kwargs = decode_kwargs(args)
    kwargs["batch_size"] = args.batch_size
    for start in tqdm(range(0, len(files), args.batch_size), desc="decode", unit="batch", disable=len(files) <= args.batch_size):
        batch = records[start : start + args.batch_size]
        lengths = torch.tensor([r.tokens.shape[0] for r in batch])
        tokens = torch.zeros(len(batch), int(lengths.max()), 2, dtype=torch.long)
        for i, r in enumerate(batch):
            tokens[i, : r.tokens.shape[0]] = r.tokens
        paths = [out / (f.name[: -len(SUFFIX)] + ".wav") for f in files[start : start + args.batch_size]]
        write_wavs(model, tokens, lengths, paths, kwargs, num_samples=[r.num_samples for r in batch])
    print(f"wrote {len(files)} wav files to {out} ({model.variant}, {model.sample_rate} Hz)")
    return 0


def cmd_eval_codec(args: argparse.Namespace) -> int:
    from codec.eval.evaluate import dataset_clips, evaluate_codec, file_clips

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give audio files / folders or --dataset, not both and not neither.")
    if args.inputs:
        clips = file_clips(audio_files(args.inputs), mono=args.mono)
    else:
        clips = dataset_clips(eval_corpus(args), args.audio_column, args.name_column)
    model = codec_from_args(args, decoder=True)
    result = evaluate_codec(model, clips, metrics=args.metrics, batch_size=args.batch_size,
                            decode_kwargs=decode_kwargs(args))
    result.settings.update(seed=args.seed, source=args.dataset or args.inputs, codec=args.codec)
    print(result.table(per_clip=args.per_clip))
    print(f"wrote {result.save_json(args.out)}")
    return 0


def cmd_export_codec(args: argparse.Namespace) -> int:
    from codec.training.export import export_codec

    out = export_codec(args.source, args.out, dtype=args.dtype, name=args.name, stages=args.stages,
                       command=args.command_line, max_mb=args.max_mb, vocoder_from=args.vocoder_from,
                       cfg_scale=args.cfg_scale)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"exported {args.source} -> {out} ({args.dtype}, {size:.2f} MB, notes in {out / 'TRAINING.md'})")
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    from codec.eval.evaluate import METRICS  # stdlib only: --help stays instant

    p = sub.add_parser("info", help="list the SemantiCodec variants and their bitrates, or an LM checkpoint's layout",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--checkpoint", default=None,
                   help="LM checkpoint folder or hub id: print its token layout, pattern and codec variant")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("encode", help="encode audio files or folders to token files (.tokens.npz)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the token files")
    p.add_argument("--batch-size", type=int, default=8, help="clips per batch (default 8)")
    p.add_argument("--mono", default="first", choices=("first", "mean"),
                   help="multi-channel audio: first channel (official) or mean (default first)")
    add_codec_args(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode token files (.tokens.npz) to wav files",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("inputs", nargs="+", help="token files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the wav files (16 kHz, original length)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per decoder call (default 8)")
    add_decode_args(p)
    add_codec_args(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("eval-codec", help="encode + decode audio and score the reconstructions (mel, MR-STFT, "
                       "SI-SDR, PESQ, STOI); table + JSON", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("inputs", nargs="*", help="audio files or folders (searched recursively); or use --dataset")
    p.add_argument("--out", required=True, help="JSON file for the scores (per clip and mean)")
    p.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS),
                   help="metrics to compute (default all; PESQ/STOI need pip install 'semantilm[eval]', "
                        "ViSQOL has no pip package and is reported as unavailable)")
    p.add_argument("--per-clip", action="store_true", help="print one table row per clip")
    p.add_argument("--batch-size", type=int, default=8, help="clips per encode / decode call (default 8)")
    p.add_argument("--mono", default="first", choices=("first", "mean"), help="multi-channel files: first channel or mean")
    add_dataset_args(p, "audio")
    p.add_argument("--name-column", default=None, help="column naming each row in the per-clip scores")
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
    p.add_argument("--max-mb", type=float, default=None, help="fail when the weights are larger than this")
    p.add_argument("--vocoder-from", default=None, metavar="DIR",
                   help="vocoder stage output (or codec folder) whose vocoder replaces the source's")
    p.add_argument("--cfg-scale", type=float, default=None,
                   help="the variant's default guidance scale for decode (default: keep the source's)")
    p.set_defaults(func=cmd_export_codec)
