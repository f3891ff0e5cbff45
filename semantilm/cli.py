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
RANDOM_TINY = "tiny-random"  # = codec_api.TINY_RANDOM (not imported: --help stays instant)
EMBEDDED_TINY = "tiny"  # a key of codec.checkpoints.EMBEDDED_CODECS

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
  semantilm encode examples/audio --codec tiny --out outputs/tokens     # the small trained codec in the package
  semantilm export-codec outputs/tiny_codec/decoder/codec codec/pretrained/tiny --dtype float16 --name tiny

Many GPUs: accelerate launch --config_file configs/accelerate/8gpu.yaml recipes/text_to_audio/train.py --config ...

exit codes: 0 done; 1 the work failed (unreadable or invalid input data, a checkpoint that does not fit);
            2 usage error (missing files, bad arguments or config keys): the message says what to change.
"""


class CliError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def _add_codec_args(p: argparse.ArgumentParser, default: str | None = "haoheliu/SemantiCodec") -> None:
    p.add_argument(
        "--codec",
        default=default,
        help="codec to use: a hub repo or local folder with the official layout, a folder written by "
        f"save_pretrained, '{EMBEDDED_TINY}' (the small trained codec shipped in the package, 50 tokens/s, offline) "
        f"or '{RANDOM_TINY}' (tiny codec with random weights: tries the pipeline offline, tokens carry no meaning). "
        "Default: " + (default or "the codec recorded in the checkpoint"),
    )
    p.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100), help="official variant (default 100)")
    p.add_argument("--vocab", type=int, default=16384, choices=(4096, 8192, 16384, 32768),
                   help="official semantic vocabulary (default 16384)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache folder for downloads")


def load_codec(args: argparse.Namespace, decoder: bool = True):
    from .codec_api import load_codec as load

    return load(args.codec, args.token_rate, args.vocab, args.device, args.cache_dir, decoder=decoder)


def _collect_files(inputs: list[str], matches, nothing_found: str) -> list[Path]:
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


def _audio_files(inputs: list[str]) -> list[Path]:
    return _collect_files(
        inputs, lambda p: p.suffix.lower() in AUDIO_SUFFIXES, f"audio files ({', '.join(AUDIO_SUFFIXES)})"
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

    from .hub import load_codec_reference, resolve_checkpoint
    from .layout import LAYOUT_FILE, AudioTokenLayout
    from .tokenizer import TOKENIZER_INFO_FILE

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


def cmd_tokenize(args: argparse.Namespace) -> int:
    import shutil

    from .codec_api import codec_description
    from .corpus import SYNTHETIC, is_token_dataset, load_corpus, save_token_dataset
    from .data import encode_audio_dataset
    from .synthetic import SyntheticSoundConfig

    if args.dataset != SYNTHETIC and args.dataset.startswith((".", "/", "~")) and not Path(args.dataset).exists():
        raise CliError(f"dataset {args.dataset!r} does not exist.")
    synthetic = SyntheticSoundConfig(num_examples=args.synthetic_examples, seconds=args.synthetic_seconds)
    corpus = load_corpus(args.dataset, split=args.split, synthetic=synthetic, max_examples=args.max_examples)
    if is_token_dataset(corpus):
        raise CliError(f"dataset {args.dataset!r} already holds tokens; train on it directly.")
    for flag, column in (("--audio-column", args.audio_column), ("--caption-column", args.caption_column)):
        if column is not None and column not in corpus.column_names:
            raise CliError(f"{flag} {column!r} is not a column of {args.dataset!r}; it has {corpus.column_names}.")
    model = load_codec(args, decoder=False)
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


def cmd_train(args: argparse.Namespace) -> int:
    from .recipe_config import RecipeConfig, load_config
    from .recipes import run_recipe

    if not Path(args.config).is_file():
        raise CliError(f"config {args.config!r} does not exist (see configs/recipes/).")
    task = _config_task(args.config)
    if (args.recipe == "codec") != (task == "codec") and args.recipe is not None:
        raise CliError(f"--recipe {args.recipe} but {args.config} is a {task} config; drop --recipe or use "
                       f"a config from configs/recipes/{args.recipe}/.")
    if task == "codec":
        return _run_codec_recipe(args.config, args.override)
    config = load_config(RecipeConfig, args.config, args.override)
    if args.recipe is not None and config.task != args.recipe:
        raise CliError(f"--recipe {args.recipe} but {args.config} is a {config.task} config; drop --recipe or use "
                       f"a config from configs/recipes/{args.recipe}/.")
    result = run_recipe(config)
    last = f", last loss {result.losses[-1][1]:.3f}" if result.losses else ""
    print(f"{config.task}: {result.global_step} steps on {result.num_examples} examples{last}; model in {result.output_dir}")
    return 0


def _config_task(path: str) -> object:
    """The ``task`` key of a recipe YAML (None when it has none or is not a mapping)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError:
        return None  # load_config reports it
    return data.get("task") if isinstance(data, dict) else None


def _run_codec_recipe(config_path: str, overrides: list[str]) -> int:
    from accelerate import PartialState

    from .codec_recipe import load_codec_recipe_config, run_codec_recipe

    config = load_codec_recipe_config(config_path, overrides)
    result = run_codec_recipe(config)
    if PartialState().is_main_process:
        last = f", last loss {result.history[-1][1]['loss']:.4f}" if result.history else ""
        print(f"codec: {result.global_step} steps{last}; codec in {result.codec_dir}")
    return 0


def _recipe_args(task: str, description: str, override_example: str, argv: list[str] | None) -> argparse.Namespace:
    """The command line shared by every ``recipes/<task>/train.py``; also sets up logging."""
    parser = argparse.ArgumentParser(prog=f"recipes/{task}/train.py", description=description)
    parser.add_argument("--config", required=True, help=f"recipe YAML, e.g. configs/recipes/{task}/tiny_cpu.yaml")
    parser.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help=f"change config values, e.g. {override_example}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return args


def _run_recipe_reporting_errors(task: str, run) -> int:
    """Run a recipe; a config or usage error exits 2, a failed run 1, each with a one-line message."""
    from .recipe_config import ConfigError

    try:
        return run()
    except (ConfigError, FileNotFoundError) as err:
        print(f"{task} recipe: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as err:
        print(f"{task} recipe: error: {err}", file=sys.stderr)
        return 1


def codec_recipe_main(argv: list[str] | None = None) -> int:
    """Entry point of ``recipes/codec/train.py``: ``--config FILE [--override key=value ...]``."""
    args = _recipe_args(
        "codec", "The codec training recipe (acoustic encoder + diffusion decoder); run it with `accelerate launch`.",
        "train.max_steps=100", argv,
    )
    return _run_recipe_reporting_errors("codec", lambda: _run_codec_recipe(args.config, args.override))


def recipe_main(task: str, argv: list[str] | None = None) -> int:
    """Entry point of ``recipes/<task>/train.py``: ``--config FILE [--override key=value ...]``."""
    args = _recipe_args(
        task, f"The {task} training recipe; run it with `accelerate launch` for several processes.",
        "train.max_steps=100 data.dataset=synthetic", argv,
    )

    def run() -> int:
        from accelerate import PartialState

        from .recipe_config import RecipeConfig, load_config
        from .recipes import run_recipe

        result = run_recipe(load_config(RecipeConfig, args.config, args.override), task=task)
        if PartialState().is_main_process:
            last = f", last loss {result.losses[-1][1]:.3f}" if result.losses else ""
            print(f"{task}: {result.global_step} steps on {result.num_examples} examples{last}; "
                  f"model in {result.output_dir}")
        return 0

    return _run_recipe_reporting_errors(task, run)


def _generation_codec(args: argparse.Namespace, folder: Path, decoder: bool):
    from .hub import load_codec_reference

    if args.codec is not None:
        return load_codec(args, decoder=decoder)
    reference = load_codec_reference(folder)
    if reference is None:
        raise CliError(f"{args.checkpoint!r} does not say which codec decodes it (no semantilm_codec.json); pass --codec.")
    return reference.load(device=args.device, cache_dir=args.cache_dir, decoder=decoder)


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from codec.audio import load_audio
    from codec.token_file import SUFFIX, TokenFile, save_tokens

    from .generation import generate_tokens
    from .hub import resolve_checkpoint
    from .modeling import load_lm

    if bool(args.text) == bool(args.audio):
        raise CliError("give text prompts (--text ...) or audio prompts (--audio FILE ...), not both and not neither.")
    for path in args.audio or []:
        if not Path(path).is_file():
            raise CliError(f"audio prompt {path!r} does not exist.")
    folder = resolve_checkpoint(args.checkpoint)
    lm = load_lm(folder)
    if lm.tokenizer is None:
        raise CliError(f"{args.checkpoint!r} has no text tokenizer; save it with semantilm.save_lm(..., tokenizer=...).")
    tok, layout = lm.tokenizer, lm.layout
    wav_out = not args.tokens_only
    model = _generation_codec(args, folder, decoder=wav_out)
    try:
        layout.check_codec(model)
    except ValueError as err:
        raise CliError(f"{err} (--codec / --token-rate / --vocab choose the codec)") from None
    lm.model.to(args.device).eval()
    if args.seed is not None:
        torch.manual_seed(args.seed)
    sampling = dict(do_sample=not args.greedy, temperature=args.temperature, top_k=args.top_k or None)
    new_frames = layout.frames_for_seconds(args.seconds)
    if args.text:
        names = [f"text_{i:02d}" for i in range(len(args.text))]
        prompts = [tok.text_prompt(t or None) for t in args.text]
        uncond = [tok.text_prompt(None) for _ in args.text]
        tokens, lengths = generate_tokens(lm.model, layout, prompts, new_frames, unconditional_prompts=uncond,
                                          guidance_scale=args.guidance, **sampling)
        sources = [f"generated from text: {t}" for t in args.text]
    else:
        names = [Path(p).stem + "_cont" for p in args.audio]
        clips = []
        for path in args.audio:
            wave, rate = load_audio(path)
            clips.append(_to_16k(wave, rate) if rate != model.sample_rate else wave)
        prompt_tokens = model.encode(clips, model.sample_rate).unbatch()
        prompts, frames = [], []
        for t in prompt_tokens:
            if layout.pattern == "interleave":
                prompts.append(tok.audio_prompt(t))
            else:
                prompts.append(tok.text_prompt(None) + (t[:, 0] + layout.semantic_offset).tolist())
            frames.append(t.shape[0])
        tokens, lengths = generate_tokens(lm.model, layout, prompts, [f + new_frames for f in frames],
                                          min_frames=[f + 1 for f in frames], **sampling)
        sources = [f"continuation of {p}" for p in args.audio]
    out = Path(args.out)
    token_rate = int(round(2 * layout.frame_rate))
    for name, t, n, source in zip(names, tokens, lengths.tolist(), sources):
        samples = int(round(n * layout.sample_rate / layout.frame_rate))
        record = TokenFile(t[:n].cpu(), str(layout.codec_variant), token_rate, layout.semantic_vocab_size,
                           layout.acoustic_vocab_size, samples, layout.sample_rate, source)
        save_tokens(out / (name + SUFFIX), record)
    if wav_out:
        _write_wavs(model, tokens, lengths, [out / f"{n}.wav" for n in names], _decode_kwargs(args))
    what = "wav + token files" if wav_out else "token files"
    print(f"wrote {len(names)} {what} to {out} ({', '.join(str(int(n)) for n in lengths)} frames)")
    return 0


def cmd_eval_codec(args: argparse.Namespace) -> int:
    from .eval_codec import dataset_clips, evaluate_codec, file_clips

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give audio files / folders or --dataset, not both and not neither.")
    if args.inputs:
        clips = file_clips(_audio_files(args.inputs), mono=args.mono)
    else:
        clips = dataset_clips(_eval_corpus(args), args.audio_column, args.name_column)
    model = load_codec(args, decoder=True)
    result = evaluate_codec(model, clips, metrics=args.metrics, batch_size=args.batch_size,
                            decode_kwargs=_decode_kwargs(args))
    result.settings.update(seed=args.seed, source=args.dataset or args.inputs, codec=args.codec)
    print(result.table(per_clip=args.per_clip))
    print(f"wrote {result.save_json(args.out)}")
    return 0


def _eval_corpus(args: argparse.Namespace):
    """The ``--dataset`` of an eval command (see load_corpus), first ``--max-examples`` rows."""
    from .corpus import load_corpus

    if args.dataset != "synthetic" and args.dataset.startswith((".", "/", "~")) and not Path(args.dataset).exists():
        raise CliError(f"dataset {args.dataset!r} does not exist.")
    return load_corpus(args.dataset, split=args.split, max_examples=args.max_examples)


def cmd_eval_lm(args: argparse.Namespace) -> int:
    import json

    from .corpus import is_token_dataset
    from .eval_lm import evaluate_lm
    from .hub import resolve_checkpoint
    from .modeling import load_lm
    from .tokenizer import _atomic_write

    lm = load_lm(resolve_checkpoint(args.checkpoint))
    if lm.tokenizer is None:
        raise CliError(f"{args.checkpoint!r} has no text tokenizer; save it with semantilm.save_lm(..., tokenizer=...).")
    corpus = _eval_corpus(args)
    if not is_token_dataset(corpus):
        raise CliError(f"dataset {args.dataset!r} holds no tokens; make a token data set with `semantilm tokenize`.")
    lm.model.to(args.device)
    result = evaluate_lm(lm.model, lm.tokenizer, corpus, batch_size=args.batch_size, max_length=args.max_length)
    print(result.table())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"checkpoint": args.checkpoint, "dataset": args.dataset, **result.to_dict()}
    _atomic_write(out, (json.dumps(payload, indent=2) + "\n").encode())
    print(f"wrote {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    overrides = {k: v for k, v in (("train_steps", args.train_steps), ("decode_steps", args.decode_steps),
                                   ("guidance_scale", args.guidance_scale), ("top_k", args.top_k),
                                   ("takes", args.takes)) if v is not None}
    config = DemoConfig(output_dir=args.out, codec=args.codec, seed=args.seed, **overrides)
    result = run_demo(config)
    ok = sum(bool(r["pitch_ok"]) for r in result.prompts)
    print(f"demo: {ok}/{len(result.prompts)} clips for {len(config.held_out)} unseen prompts ({config.takes} "
          f"per prompt) got the pitch they asked for ({result.pitch_accuracy:.0%}); WAVs, spectrograms, loss.png "
          f"and report.md in {result.output_dir} ({result.seconds['total']:.0f} s)")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import check_checkpoint_folder, push_to_hub

    try:
        check_checkpoint_folder(args.checkpoint)
    except ValueError as err:
        raise CliError(str(err)) from None
    url = push_to_hub(args.checkpoint, args.repo_id, private=args.private, token=args.token, revision=args.revision)
    print(f"pushed {args.checkpoint} to {args.repo_id}: {url}")
    return 0


def _decode_kwargs(args: argparse.Namespace) -> dict:
    import torch

    kwargs: dict = {"sampler": args.sampler}
    if args.steps is not None:
        kwargs["steps"] = args.steps
    if args.seed is not None:
        kwargs["generator"] = torch.Generator(args.device).manual_seed(args.seed)
    return kwargs


def _write_wavs(model, tokens, lengths, paths, decode_kwargs: dict, num_samples: list[int] | None = None) -> None:
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


def _token_files(inputs: list[str]) -> list[Path]:
    from codec.token_file import SUFFIX

    return _collect_files(
        inputs, lambda p: p.name.endswith(SUFFIX), f"token files (*{SUFFIX}); make them with `semantilm encode`"
    )


def cmd_decode(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from codec.token_file import SUFFIX, load_tokens

    files = _token_files(args.inputs)
    records = [load_tokens(f) for f in files]
    model = load_codec(args, decoder=True)
    for path, record in zip(files, records):
        if record.codec_variant != model.variant:
            raise CliError(
                f"{path} holds tokens of codec {record.codec_variant!r} ({record.token_rate} tokens/s) but --codec gives "
                f"{model.variant!r}; decode with the codec that made them (--codec / --token-rate / --vocab)."
            )
    out = Path(args.out)
    kwargs = _decode_kwargs(args)
    kwargs["batch_size"] = args.batch_size
    for start in tqdm(range(0, len(files), args.batch_size), desc="decode", unit="batch", disable=len(files) <= args.batch_size):
        batch = records[start : start + args.batch_size]
        lengths = torch.tensor([r.tokens.shape[0] for r in batch])
        tokens = torch.zeros(len(batch), int(lengths.max()), 2, dtype=torch.long)
        for i, r in enumerate(batch):
            tokens[i, : r.tokens.shape[0]] = r.tokens
        paths = [out / (f.name[: -len(SUFFIX)] + ".wav") for f in files[start : start + args.batch_size]]
        _write_wavs(model, tokens, lengths, paths, kwargs, num_samples=[r.num_samples for r in batch])
    print(f"wrote {len(files)} wav files to {out} ({model.variant}, {model.sample_rate} Hz)")
    return 0


def _add_decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the codec's, 50)")
    p.add_argument("--sampler", default="ddim", choices=("ddim", "dpmsolver++"),
                   help="ddim (official) or dpmsolver++ (good with 10-25 steps); default ddim")
    p.add_argument("--seed", type=int, default=None, help="random seed (reproducible output)")


def _add_dataset_args(p: argparse.ArgumentParser, audio_column: str | None, required: bool = False) -> None:
    p.add_argument("--dataset", required=required, default=None,
                   help="'synthetic', a folder saved with save_to_disk (a token data set for eval-lm), a folder "
                        "of audio files, or a hub dataset name")
    p.add_argument("--split", default="train", help="split of a DatasetDict or hub dataset (default train)")
    p.add_argument("--max-examples", type=int, default=None, help="only the first N rows")
    if audio_column is not None:
        p.add_argument("--audio-column", default=audio_column, help=f"column with the audio (default {audio_column})")


DEMO_EPILOG = """examples:
  semantilm demo                              # about 2 minutes on a laptop CPU, offline
  semantilm demo --out outputs/demo2 --seed 1 --train-steps 800
  semantilm demo --guidance-scale 3 --top-k 8 # sample wider: the tiny LM wanders more
  semantilm demo --codec tiny-random          # the machinery only: random codec, noise out
"""


def build_parser() -> argparse.ArgumentParser:
    from .eval_codec import METRICS  # stdlib only: --help stays instant

    parser = argparse.ArgumentParser(
        prog="semantilm", description="Audio language modelling with SemantiCodec tokens.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="list the SemantiCodec variants and their bitrates, or an LM checkpoint's layout",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--checkpoint", default=None,
                   help="LM checkpoint folder or hub id: print its token layout, pattern and codec variant")
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

    p = sub.add_parser("decode", help="decode token files (.tokens.npz) to wav files",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("inputs", nargs="+", help="token files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the wav files (16 kHz, original length)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per decoder call (default 8)")
    _add_decode_args(p)
    _add_codec_args(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("tokenize", help="tokenise a datasets corpus into a token data set (resumable)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
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
    _add_codec_args(p)
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("train", help="run a training recipe in this process (accelerate launch for many GPUs)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--config", required=True, help="recipe YAML, e.g. configs/recipes/text_to_audio/tiny_cpu.yaml")
    p.add_argument("--recipe", default=None, choices=("text_to_audio", "continuation", "codec"),
                   help="check that the config is for this recipe (default: the config's task)")
    p.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="change config values, e.g. train.max_steps=100 codec.name=tiny-random")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="generate audio from text prompts or continue audio prompts",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--checkpoint", required=True, help="LM checkpoint folder or hub id")
    p.add_argument("--text", nargs="+", default=None, help="captions (text-to-audio); '' generates without one")
    p.add_argument("--audio", nargs="+", default=None, help="audio files to continue")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds to generate (default 5)")
    p.add_argument("--out", required=True, help="folder for the .wav and .tokens.npz files")
    p.add_argument("--tokens-only", action="store_true", help="write token files only (no decoding)")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale, 1 = off (default 3)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--top-k", type=int, default=250, help="top-k sampling, 0 = off (default 250)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    _add_decode_args(p)
    _add_codec_args(p, default=None)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("eval-codec", help="encode + decode audio and score the reconstructions (mel, MR-STFT, "
                       "SI-SDR, PESQ, STOI); table + JSON", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("inputs", nargs="*", help="audio files or folders (searched recursively); or use --dataset")
    p.add_argument("--out", required=True, help="JSON file for the scores (per clip and mean)")
    p.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS),
                   help="metrics to compute (default all; PESQ/STOI need pip install 'semantilm[eval]', "
                        "ViSQOL has no pip package and is reported as unavailable)")
    p.add_argument("--per-clip", action="store_true", help="print one table row per clip")
    p.add_argument("--batch-size", type=int, default=8, help="clips per encode / decode call (default 8)")
    p.add_argument("--mono", default="first", choices=("first", "mean"), help="multi-channel files: first channel or mean")
    _add_dataset_args(p, "audio")
    p.add_argument("--name-column", default=None, help="column naming each row in the per-clip scores")
    _add_decode_args(p)
    _add_codec_args(p)
    p.set_defaults(func=cmd_eval_codec)

    p = sub.add_parser("eval-lm", help="per-token loss and perplexity of an LM checkpoint on a token data set, "
                       "split by semantic / acoustic positions", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EPILOG)
    p.add_argument("--checkpoint", required=True, help="LM checkpoint folder or hub id")
    p.add_argument("--out", required=True, help="JSON file for the losses and perplexities")
    p.add_argument("--batch-size", type=int, default=8, help="examples per forward (default 8)")
    p.add_argument("--max-length", type=int, default=2048, help="LM ids per example; longer clips are cut (default 2048)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    _add_dataset_args(p, None, required=True)
    p.set_defaults(func=cmd_eval_lm)

    p = sub.add_parser("demo", help="offline end-to-end demo: synthetic tones -> tokens -> text-to-audio LM -> "
                       "audio for unseen prompts (WAVs, spectrograms, loss curve, report)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DEMO_EPILOG)
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    p.add_argument("--codec", default="tiny",
                   help="codec that tokenises and decodes: tiny (embedded trained codec, default), tiny-random, "
                        "a save_pretrained folder or a hub repo")
    p.add_argument("--train-steps", type=int, default=None, help="LM optimizer steps (default 800)")
    p.add_argument("--decode-steps", type=int, default=None, help="diffusion decoder steps (default 25)")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="classifier-free guidance of the generation, 1 = off (default 2.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest audio ids (default 2)")
    p.add_argument("--takes", type=int, default=None, help="clips sampled per unseen prompt (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the LM and the sampling (default 0)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("push", help="upload an LM checkpoint folder to the Hugging Face hub",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("checkpoint", help="checkpoint folder (weights, tokenizer, layout, codec reference)")
    p.add_argument("repo_id", help="hub repository, owner/name (created when missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--token", default=None, help="hub token (default: the one `hf auth login` stored)")
    p.add_argument("--revision", default=None, help="branch to push to (default main)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("export-codec", help="write a trained codec as a compact save_pretrained folder (fp16) "
                       "with TRAINING.md", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
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
    return parser


def cmd_export_codec(args: argparse.Namespace) -> int:
    from .codec_export import export_codec

    out = export_codec(args.source, args.out, dtype=args.dtype, name=args.name, stages=args.stages,
                       command=args.command_line, max_mb=args.max_mb, vocoder_from=args.vocoder_from,
                       cfg_scale=args.cfg_scale)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"exported {args.source} -> {out} ({args.dtype}, {size:.2f} MB, notes in {out / 'TRAINING.md'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from .recipe_config import ConfigError

    try:
        return args.func(args)
    except (CliError, ConfigError, FileNotFoundError) as err:  # the user can fix the command line
        print(f"semantilm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as err:
        print(f"semantilm {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"semantilm {args.command}: interrupted (rerun the same command to resume where it can).", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
