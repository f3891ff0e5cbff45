"""LM commands: generate, eval-lm, demo, push."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codec.sampling import DECODE_SAMPLERS
from semantilm.cli.common import (
    CliError,
    add_codec_args,
    add_dataset_args,
    add_decode_args,
    add_overwrite_arg,
    check_local_dataset,
    check_output_path,
    codec_from_args,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    seed_int,
    steps_int,
)
from semantilm.generation.lm_speed import KV_CACHES


def _generation_codec(args: argparse.Namespace, folder: Path, layout, decoder: bool):
    """The codec that encodes audio prompts and decodes what the LM writes: ``--codec``, or the
    one the checkpoint names; a ``CliError`` when it does not fit the LM's token layout."""
    from semantilm.models.hub import load_codec_reference

    if args.codec is not None:
        codec = codec_from_args(args, decoder=decoder)
    else:
        reference = load_codec_reference(folder)
        if reference is None:
            raise CliError(
                f"{args.checkpoint!r} does not say which codec decodes it (no semantilm_codec.json); pass --codec."
            )
        if args.token_rate is not None or args.vocab is not None:
            raise CliError(f"--token-rate / --vocab choose a codec together with --codec; without --codec the "
                           f"checkpoint's own codec is used ({reference.command_line()}): drop them, or pass --codec.")
        codec = reference.load(device=args.device, cache_dir=args.cache_dir, decoder=decoder,
                               decoder_dtype=args.decoder_dtype if decoder else None)
    try:
        layout.check_codec(codec)
    except ValueError as err:
        raise CliError(f"{err} (--codec / --token-rate / --vocab choose the codec)") from None
    return codec


def _generation_plan(args: argparse.Namespace) -> tuple[list[str], list[str], list]:
    """(file name stem, source line) of every clip ``generate`` writes and the audio prompts read, all
    checked before a model loads: prompts readable, no output name twice, no output there unless --overwrite."""
    from codec.audio import check_waveform, load_audio
    from codec.token_file import SUFFIX
    from plumbing.io import refuse_existing
    from semantilm.generation.outputs import generation_names

    if bool(args.text) == bool(args.audio):
        raise CliError("give text prompts (--text ...) or audio prompts (--audio FILE ...), not both and not neither.")
    check_output_path(args.out, "folder", "--out")
    n = args.num_return_sequences
    prompts = []
    for path in args.audio or []:
        if not Path(path).is_file():
            raise CliError(f"audio prompt {path!r} does not exist.")
        wave, rate = load_audio(path)
        check_waveform(wave, f"audio prompt {path!r}")
        prompts.append((wave, rate))
    names = generation_names(texts=args.text, audio=args.audio, takes=n)
    if args.text:
        sources = [s for t in args.text for s in [f"generated from text: {t}"] * n]
    else:
        sources = [s for p in args.audio for s in [f"continuation of {p}"] * n]
    suffixes = [SUFFIX] if args.tokens_only else [SUFFIX, ".wav"]
    refuse_existing([Path(args.out) / (name + s) for name in names for s in suffixes], args.overwrite)
    return names, sources, prompts


def _check_takes(args: argparse.Namespace) -> None:
    """A ``CliError`` when the takes of a prompt could only be identical (greedy, or top-k 1)."""
    n = args.num_return_sequences
    if n > 1 and args.greedy:
        raise CliError(f"--greedy with --num-return-sequences {n} would write {n} identical takes of every prompt; "
                       "drop --greedy to sample different takes, or ask for one take.")
    if n > 1 and args.top_k == 1:
        raise CliError(f"--top-k 1 with --num-return-sequences {n} would write {n} identical takes of every prompt "
                       "(only the likeliest id is drawn); use --top-k 2 or more (0: no limit), or ask for one take.")


def _planned_metadata(args: argparse.Namespace, names: list[str]) -> str:
    """The ``metadata.csv`` of ``--out`` with a ``file_name,caption`` row per wav of the text prompts,
    checked before any work (an existing file that is no such table is a usage error)."""
    from semantilm.generation.metadata import planned_metadata

    captions = [text for text in args.text for _ in range(args.num_return_sequences)]
    try:
        return planned_metadata(args.out, [f"{name}.wav" for name in names], captions)
    except ValueError as err:
        raise CliError(str(err)) from None


def _sampling(args: argparse.Namespace) -> Any:
    """The LM's sampling settings from the flags (guidance only for text prompts: a continuation has none)."""
    from semantilm.generation.settings import SamplingSettings

    try:
        return SamplingSettings(seconds=args.seconds, do_sample=not args.greedy, temperature=args.temperature,
                                top_k=args.top_k or None, guidance_scale=args.guidance if args.text else None,
                                num_return_sequences=args.num_return_sequences, seed=args.seed)
    except (ValueError, TypeError) as err:
        raise CliError(f"{err} (--seconds / --temperature / --top-k / --guidance / --num-return-sequences)") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from codec.token_file import SUFFIX, TokenFile, save_tokens
    from semantilm.cli.common import decode_settings, lm_speed
    from semantilm.cli.wav_stream import generate_wavs
    from semantilm.generation.metadata import write_metadata
    from semantilm.generation.token_generation import continue_tokens, text_to_tokens
    from semantilm.models.hub import resolve_checkpoint
    from semantilm.models.lm import load_lm

    _check_takes(args)
    names, sources, prompts = _generation_plan(args)
    wav_out = not args.tokens_only
    metadata = _planned_metadata(args, names) if wav_out and args.text else None
    if args.stream and not wav_out:
        raise CliError("--stream writes wav files while they are generated; it cannot be combined with --tokens-only.")
    settings = decode_settings(args) if wav_out else None
    speed, sampling = lm_speed(args), _sampling(args)
    folder = resolve_checkpoint(args.checkpoint)
    lm = load_lm(folder)
    if lm.tokenizer is None:
        raise CliError(f"{args.checkpoint!r} has no text tokenizer; save it with semantilm.save_lm(..., tokenizer=...).")
    layout = lm.layout
    codec = _generation_codec(args, folder, layout, decoder=wav_out)
    lm.model.to(args.device).eval()
    if wav_out:  # --stream writes the wavs as audio comes; else the LM, then one decode of every clip
        paths = [Path(args.out) / f"{m}.wav" for m in names]
        tokens, lengths = generate_wavs(args, lm, codec, prompts, paths, settings=settings, speed=speed,
                                        sampling=sampling)
    elif args.text:
        tokens, lengths = text_to_tokens(lm.model, lm.tokenizer, args.text, sampling=sampling, speed=speed)
    else:
        clips = codec.encode([w for w, _ in prompts], [r for _, r in prompts],
                             names=[f"audio prompt {p!r}" for p in args.audio]).unbatch()
        tokens, lengths, _ = continue_tokens(lm.model, lm.tokenizer, clips, sampling=sampling, speed=speed)
    out = Path(args.out)
    token_rate = int(round(2 * layout.frame_rate))
    for name, t, n, source in zip(names, tokens, lengths.tolist(), sources):
        samples = int(round(n * layout.sample_rate / layout.frame_rate))
        record = TokenFile(t[:n].cpu(), codec.variant, token_rate, layout.semantic_vocab_size,
                           layout.acoustic_vocab_size, samples, layout.sample_rate, source)
        save_tokens(out / (name + SUFFIX), record)
    if metadata is not None:  # file_name,caption beside the wavs: `semantilm eval-generation` reads it
        write_metadata(out, metadata)
    what = "wav + token files" if wav_out else "token files"
    print(f"wrote {len(names)} {what} to {out} ({', '.join(str(int(n)) for n in lengths)} frames)")
    return 0


def cmd_eval_lm(args: argparse.Namespace) -> int:
    from codec.data import load_corpus
    from plumbing.io import refuse_existing, write_json
    from semantilm.data.token_dataset import is_token_dataset
    from semantilm.eval.lm import evaluate_lm
    from semantilm.models.hub import resolve_checkpoint
    from semantilm.models.lm import load_lm

    check_output_path(args.out, "file", "--out")  # before any work: the scores are written last
    refuse_existing([args.out], args.overwrite)
    lm = load_lm(resolve_checkpoint(args.checkpoint))
    if lm.tokenizer is None:
        raise CliError(f"{args.checkpoint!r} has no text tokenizer; save it with semantilm.save_lm(..., tokenizer=...).")
    check_local_dataset(args.dataset)
    corpus = load_corpus(args.dataset, split=args.split, max_examples=args.max_examples)
    if not is_token_dataset(corpus):
        raise CliError(f"dataset {args.dataset!r} holds no tokens; make a token data set with `semantilm tokenize`.")
    result = evaluate_lm(lm.model.to(args.device), lm.tokenizer, corpus, batch_size=args.batch_size,
                         max_length=args.max_length)
    print(result.table())
    record = {"checkpoint": args.checkpoint, "dataset": args.dataset, **result.to_dict()}
    print(f"wrote {write_json(args.out, record, sort_keys=False)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from semantilm.demo import DemoConfig, run_demo

    overrides = {k: v for k, v in (("train_steps", args.train_steps), ("decode_steps", args.decode_steps),
                                   ("decode_sampler", args.sampler),
                                   ("guidance_scale", args.guidance_scale), ("top_k", args.top_k),
                                   ("takes", args.takes)) if v is not None}
    try:
        config = DemoConfig(output_dir=args.out, codec=args.codec, seed=args.seed, overwrite=args.overwrite, **overrides)
    except ValueError as err:  # a combination of options the demo cannot run
        raise CliError(str(err)) from None
    check_output_path(args.out, "folder", "--out")
    result = run_demo(config)
    ok = sum(bool(r["pitch_ok"]) for r in result.prompts)
    print(f"demo: {ok}/{len(result.prompts)} clips for {len(config.held_out)} unseen prompts ({config.takes} "
          f"per prompt) got the pitch they asked for ({result.pitch_accuracy:.0%}); WAVs, spectrograms, loss.png "
          f"and report.md in {result.output_dir} ({result.seconds['total']:.0f} s)")
    return 0


DEMO_EPILOG = """examples:
  semantilm demo                              # about 2 minutes on a laptop CPU, offline
  semantilm demo --out outputs/demo2 --seed 1 --train-steps 800
  semantilm demo --guidance-scale 3 --top-k 8 # sample wider: the tiny LM wanders more
  semantilm demo --codec tiny-random          # the machinery only: random codec, noise out
"""


def cmd_push(args: argparse.Namespace) -> int:
    from semantilm.models.hub import push_to_hub

    try:
        url = push_to_hub(args.checkpoint, args.repo_id, private=args.private, token=args.token, revision=args.revision)
    except ValueError as err:  # an incomplete folder or a malformed repo id
        raise CliError(str(err)) from None
    print(f"pushed {args.checkpoint} to {args.repo_id}: {url}")
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    p = sub.add_parser("generate", help="generate audio from text prompts or continue audio prompts",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--checkpoint", required=True, help="LM checkpoint folder or hub id")
    p.add_argument("--text", nargs="+", default=None, help="captions (text-to-audio); '' generates without one")
    p.add_argument("--audio", nargs="+", default=None, help="audio files to continue")
    p.add_argument("--seconds", type=positive_float, default=5.0, help="seconds to generate (default 5)")
    p.add_argument("--out", required=True, help="folder for the .wav and .tokens.npz files")
    add_overwrite_arg(p, "wav and token files")
    p.add_argument("--tokens-only", action="store_true", help="write token files only (no decoding)")
    p.add_argument("--stream", action="store_true",
                   help="write each wav while it is generated (decoder window by window; the growing file is a "
                        "hidden .partial beside it, renamed when complete) and print the time to the first audio")
    p.add_argument("--guidance", type=nonnegative_float, default=3.0,
                   help="classifier-free guidance scale, 1 = off (default 3)")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--top-k", type=nonnegative_int, default=250, help="top-k sampling, 0 = off (default 250)")
    p.add_argument("--greedy", action="store_true",
                   help="greedy decoding instead of sampling (one take per prompt: greedy takes would be identical)")
    p.add_argument("--num-return-sequences", type=positive_int, default=1, metavar="N",
                   help="clips per prompt, written as NAME_0 ... NAME_{N-1} (default 1)")
    p.add_argument("--kv-cache", default="dynamic", choices=KV_CACHES,
                   help="the LM's KV cache: dynamic (grows per step) or static (allocated once: fixed shapes, "
                        "for --compile); default dynamic")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the LM's decoding step (needs --kv-cache static; CUDA graphs on a GPU). "
                        "The first steps pay the compilation: worth it for long or many generations")
    add_decode_args(p)
    add_codec_args(p, default=None)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("eval-lm", help="per-token loss and perplexity of an LM checkpoint on a token data set, "
                       "split by semantic / acoustic positions", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=epilog)
    p.add_argument("--checkpoint", required=True, help="LM checkpoint folder or hub id")
    p.add_argument("--out", required=True, help="JSON file for the losses and perplexities")
    p.add_argument("--batch-size", type=positive_int, default=8, help="examples per forward (default 8)")
    p.add_argument("--max-length", type=positive_int, default=2048,
                   help="LM ids per example; longer clips are cut (default 2048)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    add_overwrite_arg(p, "the JSON file")
    add_dataset_args(p, None, required=True)
    p.set_defaults(func=cmd_eval_lm)

    p = sub.add_parser("demo", help="offline end-to-end demo: synthetic tones -> tokens -> text-to-audio LM -> "
                       "audio for unseen prompts (WAVs, spectrograms, loss curve, report)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DEMO_EPILOG)
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    p.add_argument("--codec", default="tiny",
                   help="codec that tokenises and decodes: tiny (embedded trained codec, default), tiny-random, "
                        "a save_pretrained folder or a hub repo")
    add_overwrite_arg(p, "the files of a folder that is not an earlier demo's")
    p.add_argument("--train-steps", type=positive_int, default=None, help="LM optimizer steps (default 800)")
    p.add_argument("--sampler", default=None, choices=("auto", *DECODE_SAMPLERS),
                   help="the codec's decoder: auto (default) takes its distilled decoder when it has one, as the "
                        "tiny codec does, else dpmsolver++; or any sampler of `decode --sampler`")
    p.add_argument("--decode-steps", type=steps_int, default=None,
                   help="diffusion decoder steps (default 4 for the distilled decoder, else 25)")
    p.add_argument("--guidance-scale", type=nonnegative_float, default=None,
                   help="classifier-free guidance of the generation, 1 = off (default 2.0)")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample among the k likeliest audio ids (default 2)")
    p.add_argument("--takes", type=positive_int, default=None, help="clips sampled per unseen prompt (default 2)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the data, the LM and the sampling (default 0)")
    p.set_defaults(func=cmd_demo, keeps_freed_memory=True)  # it decodes (see semantilm.cli.main)

    p = sub.add_parser("push", help="upload an LM checkpoint folder to the Hugging Face hub",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("checkpoint", help="checkpoint folder (weights, tokenizer, layout, codec reference)")
    p.add_argument("repo_id", help="hub repository, owner/name (created when missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--token", default=None, help="hub token (default: the one `hf auth login` stored)")
    p.add_argument("--revision", default=None, help="branch to push to (default main)")
    p.set_defaults(func=cmd_push)
