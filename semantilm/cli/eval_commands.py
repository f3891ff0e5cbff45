"""Evaluation of generated audio: eval-generation (FAD, KL, CLAP score)."""

from __future__ import annotations

import argparse
from pathlib import Path

from semantilm.cli.common import (
    CliError,
    add_codec_args,
    add_decode_args,
    add_overwrite_arg,
    nonnegative_int,
    positive_int,
)
from semantilm.eval.generation_settings import METRICS, NEEDS_REFERENCE, ON_ERROR
from semantilm.eval.pretrained_audio_models import DEFAULT_CLAP, DEFAULT_TAGGER

EVAL_GENERATION_EPILOG = """examples:
  semantilm eval-generation gen/ --reference data/clips --out eval/generation.json
  semantilm eval-generation gen/ --reference data/clip_tokens --steps 25 --sampler dpmsolver++ --out eval/g.json
  semantilm eval-generation gen/ --metrics clap --out eval/clap.json         # no reference: CLAP score only
  semantilm eval-generation gen/ --reference ref/ --fad-model m-a-p/MERT-v1-95M --metrics fad --out eval/fad.json

GENERATED and --reference: a folder of audio files whose captions are in metadata.csv (file_name,caption;
`semantilm generate` writes one) or .txt files beside them, or a token folder (`semantilm tokenize`), decoded
on the fly by the codec its manifest names (or --codec). KL pairs clips by caption. Models are hub names or
local folders (offline: HF_HUB_OFFLINE=1 reads the Hugging Face cache). Per-clip rows go to a CSV beside --out.
Defaults, conventions and published numbers: docs/generation_metrics.md.
"""


def metric_names(text: str) -> tuple[str, ...]:
    """An ``argparse`` type: a comma-separated list of distinct metric names."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or any(n not in METRICS for n in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of distinct names from {','.join(METRICS)}, "
                                         f"got {text!r}")
    return names


metric_names.__name__ = "metric list"


def _settings(args: argparse.Namespace):
    """The metrics settings of the command line (``--metrics`` defaults to all with a reference, else clap)."""
    from semantilm.eval.generation_settings import GenerationMetricsSettings

    metrics = args.metrics or (METRICS if args.reference else ("clap",))
    missing = [m for m in metrics if m in NEEDS_REFERENCE]
    if args.reference is None and missing:
        raise CliError(f"{','.join(missing)} compare the generated clips with reference clips; pass --reference "
                       "DIR_OR_TOKEN_FOLDER, or --metrics clap.")
    return GenerationMetricsSettings(
        metrics=metrics, clap_model=args.clap_model, tagger=args.tagger, fad_model=args.fad_model, device=args.device,
        batch_size=args.batch_size, bootstrap=args.bootstrap, seed=args.seed if args.seed is not None else 0,
        cache_dir=args.cache_dir, on_error=args.on_error, progress=not args.no_progress,
    )


def _open(path: str, decoding, what: str):
    from semantilm.eval.clip_sources import open_clips

    try:
        return open_clips(path, decoding, what)
    except ValueError as err:
        if type(err) is not ValueError:  # a ConfigError (the token folder's codec) keeps its own exit code
            raise
        raise CliError(str(err)) from None


def cmd_eval_generation(args: argparse.Namespace) -> int:
    from plumbing.io import check_output_path, refuse_existing
    from semantilm.cli.common import check_codec_choice, decode_settings
    from semantilm.eval.clip_sources import TokenDecoding
    from semantilm.eval.generation_report import csv_path_for

    out = Path(args.out)
    if out.suffix != ".json":
        raise CliError(f"--out must name a .json file (the per-clip CSV goes beside it), got {args.out!r}.")
    check_output_path(out, "file", "--out")  # before any work: the results are written last
    refuse_existing([out, csv_path_for(out)], args.overwrite)
    check_codec_choice(args)
    settings = _settings(args)
    decoding = TokenDecoding(codec=args.codec, token_rate=args.token_rate, vocab=args.vocab, device=args.device,
                             cache_dir=args.cache_dir, decode=decode_settings(args), decoder_dtype=args.decoder_dtype,
                             seed=settings.seed, batch_size=args.batch_size)
    generated = _open(args.generated, decoding, "GENERATED")
    reference = _open(args.reference, decoding, "--reference") if args.reference else None
    from semantilm.eval.generation_metrics import evaluate_generation
    from semantilm.eval.pretrained_audio_models import PretrainedModelError

    try:
        result = evaluate_generation(generated, reference, settings)
    except PretrainedModelError as err:  # a model of the wrong kind: the command line names another
        raise CliError(str(err)) from None
    print(result.table())
    json_path, csv_path = result.save(out, overwrite=args.overwrite)
    print(f"wrote {json_path} and {csv_path}")
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    p = sub.add_parser(
        "eval-generation", help="judge generated audio as text-to-audio papers do: FAD and KL against reference "
        "clips, CLAP score against the captions; table, JSON and per-clip CSV",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EVAL_GENERATION_EPILOG,
    )
    p.add_argument("generated", metavar="GENERATED", help="folder of generated audio files with captions, or a token folder")
    p.add_argument("--reference", default=None, metavar="DIR_OR_TOKEN_FOLDER",
                   help="reference clips (real audio of the same captions), a folder or a token folder")
    p.add_argument("--out", required=True, metavar="FILE.json", help="JSON file of the results; FILE.csv beside it")
    add_overwrite_arg(p, "the JSON and CSV files")
    p.add_argument("--metrics", type=metric_names, default=None, metavar="fad,kl,clap",
                   help="metrics to compute (default: fad,kl,clap with --reference, clap without)")
    p.add_argument("--clap-model", default=DEFAULT_CLAP, metavar="NAME_OR_PATH",
                   help=f"CLAP checkpoint of the CLAP score, and of FAD without --fad-model (default {DEFAULT_CLAP})")
    p.add_argument("--fad-model", default=None, metavar="NAME_OR_PATH",
                   help="any transformers audio model whose embeddings FAD compares (default: the CLAP audio tower)")
    p.add_argument("--tagger", default=DEFAULT_TAGGER, metavar="NAME_OR_PATH",
                   help=f"audio classifier whose label distributions KL compares (default {DEFAULT_TAGGER})")
    p.add_argument("--batch-size", type=positive_int, default=8,
                   help="clips per judge-model call and token rows per decoder call (default 8)")
    p.add_argument("--bootstrap", type=nonnegative_int, default=200,
                   help="resampling rounds of FAD's 95%% interval, 0 = none (needs 10 clips per set; default 200)")
    p.add_argument("--on-error", default="skip", choices=ON_ERROR,
                   help="skip: list unreadable, empty or too short clips in the CSV and go on (default); stop: exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_decode_args(p)
    add_codec_args(p, default=None, recorded_in="the token folder (for token folders only)")
    for action in p._actions:
        if action.dest == "seed":
            action.help = "seed of the decoder's noise (token folders) and of FAD's subsets and bootstrap (default 0)"
    p.set_defaults(func=cmd_eval_generation)
