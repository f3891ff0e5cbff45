"""Cost of judging generated audio (``semantilm eval-generation``): seconds per clip of each part, on the CPU
by default.

Parts: the CLAP audio tower (FAD embeddings and the CLAP score), the CLAP text tower (one caption per
clip), the AudioSet tagger (label distributions for KL), the FAD arithmetic on the embeddings (Fréchet
distance, FAD-infinity and a 200-round bootstrap; per set, shown per clip), and ``evaluate_generation``
end to end (generated and reference sets, all three metrics; per generated clip).

Models have random weights (no download): ``tiny`` are the test suite's sizes, ``full`` the released
sizes, ``ClapConfig()`` (HTSAT + RoBERTa-base, as laion/clap-htsat-unfused) and ``ASTConfig()`` with
527 labels (as MIT/ast-finetuned-audioset-10-10-0.4593), each saved and loaded the way named models are.
Weights do not change the cost, so the full-size rows estimate the real models' speed.

    python benchmarks/generation_metrics.py                       # tiny and full, 8 clips of 5 s, 2 threads
    python benchmarks/generation_metrics.py --sizes full --clips 16 --seconds 10 --threads 4
    python benchmarks/generation_metrics.py --device cuda --sizes full
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # steadier timings on a shared machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAPTIONS = ["a dog barks twice", "rain falls on a tin roof", "a violin plays a slow melody", "a car passes by",
            "birds sing in the morning", "people talk in a busy cafe", "a sine tone at 440 Hz", "thunder rolls"]


def _tokenizer(folder: Path) -> object:
    """A byte-level BPE tokenizer trained on a few captions, saved as RoBERTa's files."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CAPTIONS * 4, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    return RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def save_clap(folder: Path, size: str) -> Path:
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
    )

    tokenizer = _tokenizer(folder)
    if size == "full":
        config = ClapConfig(text_config=ClapTextConfig(vocab_size=len(tokenizer)).to_dict())
        extractor = ClapFeatureExtractor(truncation="rand_trunc")
    else:
        audio = ClapAudioConfig(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=8, hidden_size=16,
                                window_size=8, projection_dim=16, num_hidden_layers=2, spec_size=128)
        text = ClapTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_attention_heads=2,
                              num_hidden_layers=1, projection_dim=16, max_position_embeddings=80)
        config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)
        extractor = ClapFeatureExtractor(truncation="rand_trunc", max_length_s=1)
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(folder)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tagger(folder: Path, size: str) -> Path:
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    if size == "full":
        config = ASTConfig(num_labels=527)
    else:
        config = ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=8)
    torch.manual_seed(0)
    ASTForAudioClassification(config).save_pretrained(folder)
    ASTFeatureExtractor().save_pretrained(folder)
    return folder


def clips(count: int, seconds: float, rate: int, seed: int) -> list[torch.Tensor]:
    """Tones with a little noise, one frequency per clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return [torch.from_numpy((0.4 * np.sin(2 * np.pi * (200 + 90 * i) * t) + 0.02 * rng.standard_normal(t.size))
                             .astype(np.float32)) for i in range(count)]


def timed(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(size: str, folder: Path, args: argparse.Namespace) -> list[tuple[str, str, float]]:
    """(model, part, seconds per clip) rows for one model size."""
    from codec.audio import resample
    from semantilm.eval.audio_models import AudioTagger
    from semantilm.eval.clap_model import ClapEmbedder
    from semantilm.eval.clip_sources import WaveformClips
    from semantilm.eval.fad import frechet_audio_distance
    from semantilm.eval.generation_metrics import evaluate_generation
    from semantilm.eval.generation_settings import GenerationMetricsSettings

    clap_dir, tagger_dir = save_clap(folder / "clap", size), save_tagger(folder / "ast", size)
    clap = ClapEmbedder(str(clap_dir), device=args.device, batch_size=args.batch_size)
    tagger = AudioTagger(str(tagger_dir), device=args.device, batch_size=args.batch_size)
    waves = clips(args.clips, args.seconds, 16000, 0)
    at_clap = [resample(w, 16000, clap.sample_rate) for w in waves]
    at_tagger = [resample(w, 16000, tagger.sample_rate) for w in waves]
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(args.clips)]
    n, rows = args.clips, []
    rows.append(("CLAP", "audio embeddings (FAD, CLAP score)", timed(lambda: clap.embed(at_clap), args.repeats) / n))
    rows.append(("CLAP", "text embeddings (CLAP score)", timed(lambda: clap.embed_texts(captions), args.repeats) / n))
    rows.append(("AST", "label probabilities (KL)", timed(lambda: tagger.probabilities(at_tagger), args.repeats) / n))
    g, r = clap.embed(at_clap), clap.embed([resample(w, 16000, clap.sample_rate) for w in clips(n, args.seconds, 16000, 1)])
    rows.append(("-", f"FAD arithmetic, {g.shape[1]}-d, 200 bootstrap rounds (per set, / N)",
                 timed(lambda: frechet_audio_distance(g, r, bootstrap=200), args.repeats) / n))
    settings = GenerationMetricsSettings(clap_model=str(clap_dir), tagger=str(tagger_dir), device=args.device,
                                         batch_size=args.batch_size, progress=False)
    gen = WaveformClips([f"g{i}" for i in range(n)], captions, waves, 16000)
    ref = WaveformClips([f"r{i}" for i in range(n)], captions, clips(n, args.seconds, 16000, 2), 16000)
    rows.append(("CLAP + AST", "evaluate_generation, all metrics, both sets (per generated clip)",
                 timed(lambda: evaluate_generation(gen, ref, settings), 1) / n))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--clips", type=int, default=8, help="clips per set (default 8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per clip (default 5)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call (default 8)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after a warm-up; the best counts")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.clips < 10:
        print(f"note: {args.clips} clips per set is below the 10 that FAD-infinity and the bootstrap need; their "
              "cost is then left out of the FAD arithmetic row.")
    torch.set_num_threads(args.threads)
    print(f"{args.clips} clips of {args.seconds:g} s, {args.device}, {args.threads} threads, torch {torch.__version__}\n")
    print("| models | part | s per clip |\n|---|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for model, part, seconds in measure(size, Path(tmp) / size, args):
                print(f"| {model} ({size}) | {part} | {seconds:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
