"""Generation speed: LM tokens/s with and without classifier-free guidance (``--sections tokens``),
and time to the first audio and in all for a clip with and without streaming (``--sections stream``).

Tokens/s: for each LM config and batch size, the decoding loop users run (``generate_tokens``)
writing the same number of frames:

* ``no guidance``: ``guidance_scale=1``, the conditional rows alone;
* ``guidance``: ``guidance_scale=3``, conditional and unconditional rows as one doubled batch with
  one KV cache (one forward per step);
* ``guidance, no packing``: the same with ``LMSpeed(packed_linears=False)`` (``F.linear`` instead of
  oneDNN with packed weights);
* with ``--speeds static compile``, guidance again with a static KV cache, and with a static cache
  and the step compiled (``semantilm.LMSpeed``).

Tokens/s counts the new LM ids of the conditional rows (2 per frame + ``<|audio_end|>``), summed
over the batch; every row writes exactly ``--seconds`` of frames (``min_frames = max_frames``).
Sampling as ``generate_audio``'s defaults (top-k 250), guidance scale 3. The vocabulary is that
of the official 100 tokens/s codec after an 8000-id text vocabulary; weights are random.

Streaming: ``--stream-seconds`` of text-to-audio (default 30 s) with the tiny LM (context widened
to fit) and a codec with random weights, the tiny one (1.28 s decoder windows) or with
``--stream-codec official`` the full-size decoder (10.24 s windows). ``generate_audio`` is the way
without streaming: the LM to the end, then one ``codec.decode`` of every clip; ``streamed`` is
``generate_audio_stream``, which decodes each window once its frames exist (time to its first
chunk, and to its last). Both use the same seed and decoder settings; the LM's ``<|audio_end|>``
logit is pushed down so that every clip has the full length.

    python benchmarks/generation.py                               # both sections, CPU, 2 threads
    python benchmarks/generation.py --models base-100m --batches 4 --seconds 2 --sections tokens
    python benchmarks/generation.py --sections stream --stream-seconds 30 --decode-steps 25
    python benchmarks/generation.py --sections tokens --device cuda --speeds static compile
    python benchmarks/generation.py --sections stream --stream-codec official --stream-seconds 30
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

# On a shared machine, OpenMP workers that spin at barriers while another process holds the
# other core make multi-threaded timings erratic (seconds per step); let them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec import DecodeSettings, SemantiCodec, SemantiCodecConfig  # noqa: E402
from codec.checkpoints import embedded_codec_folder  # noqa: E402
from semantilm.generation.generate import generate_audio  # noqa: E402
from semantilm.generation.lm_speed import LMSpeed  # noqa: E402
from semantilm.generation.settings import SamplingSettings  # noqa: E402
from semantilm.generation.stream import generate_audio_stream  # noqa: E402
from semantilm.generation.token_generation import generate_tokens  # noqa: E402
from semantilm.models.lm import LMConfig, build_lm  # noqa: E402
from semantilm.tokens.layout import AudioTokenLayout  # noqa: E402
from semantilm.tokens.tokenizer import AudioTextTokenizer, train_sentencepiece  # noqa: E402

MODES = {  # column -> (guidance scale, LM speed settings)
    "no guidance": (1.0, LMSpeed()),
    "guidance": (3.0, LMSpeed()),
    "guidance, no packing": (3.0, LMSpeed(packed_linears=False)),
}
SPEED_MODES = {  # --speeds: guidance with the LM speed settings (columns added to MODES)
    "static": ("guidance, static cache", LMSpeed(kv_cache="static")),
    "compile": ("guidance, static + compile", LMSpeed(kv_cache="static", compile=True)),
}


def layout() -> AudioTokenLayout:
    return AudioTokenLayout(text_vocab_size=8000, semantic_vocab_size=16384, acoustic_vocab_size=8192, frame_rate=50.0)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_modes(model, lay: AudioTokenLayout, batch: int, frames: int, device: str, repeats: int,
               modes: dict[str, tuple[float, LMSpeed]]) -> dict[str, float]:
    """LM tokens/s of each of ``modes`` (column -> (guidance, speed)): the fastest of ``repeats`` rounds, each round
    running every mode once in turn (so that a load spike from other processes hits all modes alike)."""
    prompt = [1] + list(range(2, 14)) + [lay.audio_start_id]  # a 14-id "caption" prompt
    uncond = [1, lay.audio_start_id]

    def run(mode: tuple[float, LMSpeed], frames: int, seed: int):
        sampling = SamplingSettings(guidance_scale=mode[0], top_k=250, seed=seed, batch_size=batch)
        return generate_tokens(model, lay, [prompt] * batch, frames, unconditional_prompts=[uncond] * batch,
                               min_frames=frames, sampling=sampling, speed=mode[1], progress=False)

    for mode in modes.values():  # warm-up
        run(mode, 2, 0)
    best = dict.fromkeys(modes, float("inf"))
    for r in range(repeats):
        for name, mode in modes.items():
            sync(device)
            t0 = time.perf_counter()
            _, lengths = run(mode, frames, r)
            sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
            assert bool((lengths == frames).all()), lengths
    return {name: batch * (2 * frames + 1) / t for name, t in best.items()}


def tokens_section(args: argparse.Namespace) -> None:
    modes = dict(MODES)
    for key in args.speeds:
        column, speed = SPEED_MODES[key]
        modes[column] = (3.0, speed)
    lay = layout()
    cols = list(modes)
    print("| model | params | batch | frames | " + " | ".join(f"{c} (tok/s)" for c in cols) + " |")
    print("|---|---|---|---|" + "---|" * len(cols))
    for i, name in enumerate(args.models):
        model = build_lm(lay, ROOT / "configs" / "lm" / f"{name}.yaml", seed=0).to(args.device).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        seconds = args.seconds[min(i, len(args.seconds) - 1)] if args.seconds else (4.0 if name == "tiny" else 2.0)
        frames = lay.frames_for_seconds(seconds)
        for batch in args.batches:
            rates = time_modes(model, lay, batch, frames, args.device, args.repeats, modes)
            print(f"| {name} | {params:.1f}M | {batch} | {frames} | "
                  + " | ".join(f"{rates[c]:.0f}" for c in cols) + " |", flush=True)



# ----- streaming: time to the first audio ---------------------------------------------------------
CAPTIONS = ["a dog barks", "rain on a roof", "a violin plays", "birds sing at dawn"]


def stream_codec(name: str, device: str) -> SemantiCodec:
    """The tiny codec's configuration (``tiny``) or the official r100 one (``official``), random weights."""
    torch.manual_seed(0)
    if name == "tiny":
        config = SemantiCodecConfig.from_json_file(embedded_codec_folder("tiny") / "config.json")
    else:
        config = SemantiCodecConfig.official(100, 16384)
    return SemantiCodec(config, with_decoder=True).to(device).eval()


def stream_lm(codec: SemantiCodec, seconds: float, device: str, folder: Path) -> tuple[object, AudioTextTokenizer]:
    """The tiny LM, its context widened to ``seconds`` of the codec's frames, never ending a clip early."""
    train_sentencepiece(CAPTIONS * 8, folder / "text.model", vocab_size=40)
    tok = AudioTextTokenizer.from_sentencepiece(folder / "text.model", codec)
    frames = tok.layout.frames_for_seconds(seconds)
    size = dataclasses.replace(LMConfig.from_yaml("tiny"), max_position_embeddings=2 * frames + 64)
    model = build_lm(tok.layout, size, seed=0).to(device).eval()
    end = tok.layout.audio_end_id

    def no_early_end(module, inputs, output):
        output.logits[..., end] -= 50.0
        return output

    model.register_forward_hook(no_early_end)
    return model, tok


def time_streaming(model, tok, codec, batch: int, seconds: float, settings: DecodeSettings, device: str
                   ) -> dict[str, float]:
    """Seconds to the whole clips without streaming (``generate_audio``), and to the first and last
    chunk with it."""
    captions = (CAPTIONS * batch)[:batch]
    frames = tok.layout.frames_for_seconds(seconds)
    sampling = SamplingSettings(seconds=seconds, seed=0, batch_size=batch)
    common = dict(sampling=sampling, decode=settings, progress=False)
    sync(device)
    t0 = time.perf_counter()
    out = generate_audio(model, tok, codec, captions, generator=torch.Generator().manual_seed(0), **common)
    sync(device)
    whole = time.perf_counter() - t0
    assert bool((out.token_lengths == frames).all()), out.token_lengths
    t0 = time.perf_counter()
    first = None
    for _ in generate_audio_stream(model, tok, codec, captions, generator=torch.Generator().manual_seed(0), **common):
        if first is None:
            sync(device)
            first = time.perf_counter() - t0
    sync(device)
    return {"whole": whole, "first": first, "streamed": time.perf_counter() - t0}


def stream_section(args: argparse.Namespace) -> None:
    codec = stream_codec(args.stream_codec, args.device)
    settings = DecodeSettings(sampler=args.decode_sampler, steps=args.decode_steps)
    c = codec.config
    print(f"streaming: tiny LM, {args.stream_codec} codec ({c.window_tokens / c.frame_rate:.2f} s decoder windows), "
          f"{settings.sampler} {settings.steps} steps, guidance 3, top-k 250")
    print()
    print("| audio s | batch | generate_audio: LM, then one decode (s) | streamed: first audio (s) "
          "| streamed: all audio (s) | first audio / whole |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        model, tok = stream_lm(codec, args.stream_seconds, args.device, Path(folder))
        time_streaming(model, tok, codec, 1, min(args.stream_seconds, 2 * c.window_tokens / c.frame_rate), settings,
                       args.device)  # warm-up
        for batch in args.stream_batches:
            t = time_streaming(model, tok, codec, batch, args.stream_seconds, settings, args.device)
            print(f"| {args.stream_seconds:g} | {batch} | {t['whole']:.1f} | {t['first']:.1f} | {t['streamed']:.1f} "
                  f"| {100 * t['first'] / t['whole']:.0f} % |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny", "base-100m"], help="configs/lm/<name>.yaml")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--seconds", nargs="+", type=float, default=None,
                    help="audio seconds per model (default: 4 for tiny, 2 for the others)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds; the fastest run counts (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--speeds", nargs="*", choices=tuple(SPEED_MODES), default=[],
                    help="also time guidance with a static KV cache and/or a compiled step "
                         "(compilation happens in the untimed warm-up)")
    ap.add_argument("--sections", nargs="+", choices=("tokens", "stream"), default=["tokens", "stream"])
    ap.add_argument("--stream-seconds", type=float, default=30.0, help="audio per clip of the stream section (default 30)")
    ap.add_argument("--stream-batches", nargs="+", type=int, default=[1], help="clips per call (default 1)")
    ap.add_argument("--stream-codec", choices=("tiny", "official"), default="tiny",
                    help="tiny decoder (default) or the full-size one (random weights)")
    ap.add_argument("--decode-sampler", default="ddim", help="decoder sampler (default ddim)")
    ap.add_argument("--decode-steps", type=int, default=50, help="decoder steps (default 50)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"device {args.device}, {args.threads} threads (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), "
          f"torch {torch.__version__}"
          + (f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else ""))
    if "tokens" in args.sections:
        print()
        tokens_section(args)
    if "stream" in args.sections:
        print()
        stream_section(args)


if __name__ == "__main__":
    main()
