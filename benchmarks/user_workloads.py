"""What users run, timed: the measurements behind ``benchmarks/run_all.py``, one function each.

Every function builds what it needs (weights are random: speed does not depend on their values),
times one call of a public entry point and returns a dict of JSON numbers. The codec rows use the
audio of ``../shared/official-reference/inputs.py``, the audio the official timer encodes.

Run one in a fresh process (``run_all.py`` does so for the full-size rows, as the official timer
runs each of its measurements in a process of its own); it prints the dict as one JSON line:

    python benchmarks/user_workloads.py encode '{"codec": "r100", "work": "enc8"}'
    python benchmarks/user_workloads.py decode '{"codec": "r100", "sampler": "dpmsolver++", "steps": 15}'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # steadier timings on a shared machine

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "official-reference"
CAPTIONS = ["a dog barks", "rain on a roof", "a violin plays", "birds sing at dawn"]


def build_codec(name: str, decoder: bool):
    """``tiny``: the tiny configuration; ``r100``: the official 100 tokens/s, 16384-word variant."""
    import torch

    from codec import SemantiCodec, SemantiCodecConfig

    if name == "tiny":
        return SemantiCodec.tiny_random(100, with_decoder=decoder).eval()
    if name != "r100":
        raise ValueError(f"codec must be 'tiny' or 'r100', got {name!r}.")
    torch.manual_seed(0)
    return SemantiCodec(SemantiCodecConfig.official(100, 16384), with_decoder=decoder).eval()


def reference_clips(work: str, reference_dir: str | None, seconds: float | None) -> list:
    """``enc1``: ``clip_a()`` (10.24 s); ``enc8``: the 8 clips of ``clips_b()`` (10 s each); each cut to
    ``seconds`` when given (the quick suite)."""
    import torch

    folder = Path(reference_dir) if reference_dir else REFERENCE
    if not (folder / "inputs.py").is_file():
        raise FileNotFoundError(f"no inputs.py in {str(folder)!r}: pass --reference-dir, the folder of the "
                                "official-reference files (shared/official-reference).")
    sys.path.insert(0, str(folder))
    try:
        from inputs import clip_a, clips_b
    finally:
        sys.path.remove(str(folder))
    clips = [clip_a()] if work == "enc1" else clips_b()
    if seconds:
        clips = [c[: int(seconds * 16000)] for c in clips]
    return [torch.from_numpy(c.copy()) for c in clips]


def encode(codec: str = "r100", work: str = "enc1", seconds: float | None = None,
           reference_dir: str | None = None) -> dict:
    """``SemantiCodec.encode`` of the official timer's audio: one clip, or 8 clips in one call."""
    model = build_codec(codec, decoder=False)
    clips = reference_clips(work, reference_dir, seconds)
    start = time.perf_counter()
    out = model.encode(clips, batch_size=8)
    wall = time.perf_counter() - start
    return {"seconds": wall, "clips": len(clips), "frames": int(out.lengths.sum())}


def decode_settings_supported(sampler: str, steps: int) -> str | None:
    """None when ``DecodeSettings(sampler, steps)`` is accepted, else why not."""
    from codec import DecodeSettings

    try:
        DecodeSettings(sampler=sampler, steps=steps)
    except (ValueError, TypeError) as error:
        return str(error)
    return None


def decode(codec: str = "r100", sampler: str = "ddim", steps: int = 50, seconds: float | None = None,
           reference_dir: str | None = None, decoder_dtype: str = "float32") -> dict:
    """``SemantiCodec.decode`` of tokens as long as the official timer's (``clip_a``: 10.24 s, two
    decoder windows at r100), seeded; guidance at the codec's scale (official 2.0). ``sampler="distilled"``
    decodes with a student started from the teacher's weights (its cost does not depend on training);
    ``decoder_dtype`` is the decoder's precision, as ``load_codec(decoder_dtype=...)`` sets it."""
    import torch

    from codec import DecodeSettings
    from codec.student import DistilledStudent

    model = build_codec(codec, decoder=True)
    if sampler == "distilled" and model.decoder.student is None:
        model.decoder.student = DistilledStudent.from_teacher(model.decoder, guidance_scale=model.config.cfg_scale)
        model.decoder.student.requires_grad_(False).eval()
    model.decoder.set_dtype(getattr(torch, decoder_dtype))
    clip = reference_clips("enc1", reference_dir, seconds)[0]
    frames = model.config.num_frames(clip.numel())
    g = torch.Generator().manual_seed(0)
    tokens = torch.stack([torch.randint(0, model.semantic_vocab_size, (1, frames), generator=g),
                          torch.randint(0, model.acoustic_vocab_size, (1, frames), generator=g)], dim=-1)
    settings = DecodeSettings(sampler=sampler, steps=steps)
    start = time.perf_counter()
    out = model.decode(tokens, settings=settings, generator=torch.Generator().manual_seed(0), progress=False)
    wall = time.perf_counter() - start
    return {"seconds": wall, "audio_seconds": float(out.lengths[0]) / out.sample_rate}


def _synthetic_settings(clips: int, seconds: float):
    from codec.data.synthetic import SyntheticSoundConfig
    from semantilm import TokenizeSettings

    return TokenizeSettings(synthetic=SyntheticSoundConfig(num_examples=clips, seconds=seconds), batch_size=8)


def tokenize(codec: str = "r100", clips: int = 8, seconds: float = 10.0, out_dir: str | None = None) -> dict:
    """``tokenize_corpus`` of the synthetic captioned set (what ``semantilm tokenize synthetic`` runs) into a
    new token folder (``out_dir``, kept for the training row; a temporary one when None)."""
    import datasets

    from semantilm import tokenize_corpus

    datasets.disable_progress_bars()
    model = build_codec(codec, decoder=False)
    settings = _synthetic_settings(clips, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out_dir) if out_dir else Path(tmp) / "tokens"
        start = time.perf_counter()
        tokenize_corpus("synthetic", model, folder, settings=settings, progress=False)
        wall = time.perf_counter() - start
    return {"seconds": wall, "audio_hours": clips * seconds / 3600}


def tokenize_command(clips: int = 16, seconds: float = 2.0) -> dict:
    """``semantilm tokenize synthetic --codec tiny`` from start to exit (interpreter start and imports included)."""
    script = Path(sys.executable).parent / "semantilm"
    command = [str(script)] if script.is_file() else [sys.executable, "-c",
                                                       "import sys; from semantilm.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory() as tmp:
        command += ["tokenize", "synthetic", "--synthetic-examples", str(clips), "--synthetic-seconds", str(seconds),
                    "--codec", "tiny", "--out", str(Path(tmp) / "tokens"), "--batch-size", "8", "--no-progress"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"semantilm tokenize exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return {"seconds": wall, "audio_hours": clips * seconds / 3600}


def _tokenizer(codec, folder: Path, captions: list[str] = CAPTIONS):
    from semantilm import AudioTextTokenizer, train_sentencepiece

    train_sentencepiece(list(captions) * 8, folder / "text.model", vocab_size=40)
    return AudioTextTokenizer.from_sentencepiece(folder / "text.model", codec)


def train(lm: str = "tiny", codec: str = "tiny", tokens_dir: str | None = None, steps: int = 4,
          batch_size: int = 2, clips: int = 8, seconds: float = 2.0) -> dict:
    """``train_lm`` of a new LM on a token folder (``tokens_dir``, or one made here, untimed) for
    ``steps`` steps, nothing saved (wall time includes the Trainer's set-up)."""
    import datasets

    from semantilm import TrainConfig, build_lm, load_token_dataset, tokenize_corpus, train_lm

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_codec(codec, decoder=False)
        if tokens_dir is None:
            tokens_dir = str(tmp / "tokens")
            tokenize_corpus("synthetic", model, tokens_dir, settings=_synthetic_settings(clips, seconds), progress=False)
        rows = load_token_dataset(tokens_dir, cache_dir=tmp / "cache")
        tokenizer = _tokenizer(model, tmp, rows["caption"] if "caption" in rows.column_names else CAPTIONS)
        lm = build_lm(tokenizer.layout, lm, seed=0)
        config = TrainConfig(output_dir=str(tmp / "lm"), max_steps=steps, batch_size=batch_size, save_steps=10**6,
                             logging_steps=10**6, disable_tqdm=True, use_cpu=True, caption_dropout=0.0)
        start = time.perf_counter()
        train_lm(lm, tokenizer, rows, config, save_final=False)
        wall = time.perf_counter() - start
        audio_ids = 2 * sum(len(ids) for ids in rows["semantic_ids"]) / len(rows)
    return {"seconds": wall, "steps": steps, "batch_size": batch_size, "audio_ids_per_row": audio_ids}


def generate(lm: str = "tiny", codec: str = "tiny", seconds: float = 10.0, sampler: str = "dpmsolver++",
             steps: int = 15) -> dict:
    """``generate_audio`` of one caption (guidance and sampling at their defaults) with a new LM that never
    ends a clip early, the codec decoding with ``DecodeSettings(sampler, steps)``."""
    import dataclasses

    import torch

    from codec import DecodeSettings
    from semantilm import LMConfig, SamplingSettings, build_lm, generate_audio

    with tempfile.TemporaryDirectory() as tmp:
        model = build_codec(codec, decoder=True)
        tokenizer = _tokenizer(model, Path(tmp))
    frames = tokenizer.layout.frames_for_seconds(seconds)
    size = LMConfig.from_yaml(lm)
    size = dataclasses.replace(size, max_position_embeddings=max(size.max_position_embeddings, 2 * frames + 64))
    network = build_lm(tokenizer.layout, size, seed=0).eval()
    end = tokenizer.layout.audio_end_id

    def no_early_end(module, inputs, output):  # every clip has the full length: the timing is of `seconds`
        output.logits[..., end] -= 50.0
        return output

    network.register_forward_hook(no_early_end)
    torch.manual_seed(0)
    start = time.perf_counter()
    out = generate_audio(network, tokenizer, model, [CAPTIONS[0]], sampling=SamplingSettings(seconds=seconds),
                         decode=DecodeSettings(sampler=sampler, steps=steps), generator=torch.Generator().manual_seed(0))
    wall = time.perf_counter() - start
    return {"seconds": wall, "audio_seconds": out.audio.shape[-1] / model.sample_rate}


WORKLOADS = {"encode": encode, "decode": decode, "tokenize": tokenize, "tokenize_command": tokenize_command,
             "train": train, "generate": generate}


def run_in_process(name: str, kwargs: dict, threads: int, timeout: float | None = None) -> dict:
    """One workload in a fresh Python process with ``threads`` torch threads; its dict."""
    command = [sys.executable, str(Path(__file__).resolve()), name, json.dumps(kwargs), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{name} {kwargs} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("arguments", nargs="?", default="{}", help="keyword arguments as a JSON object")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.path.insert(0, str(ROOT))
    if args.workload in ("decode", "generate"):  # as the semantilm commands that decode do
        from codec.fast import keep_freed_memory

        keep_freed_memory()
    print(json.dumps(WORKLOADS[args.workload](**json.loads(args.arguments))))


if __name__ == "__main__":
    main()
