"""LM generation speed with and without classifier-free guidance: tokens/s of ``generate_tokens``.

For each LM config and batch size, three ways to generate the same number of frames:

* ``no guidance``: ``guidance_scale=1`` (``model.generate`` with the audio-token constraint);
* ``two-call guidance``: ``guidance_mode="two_calls"``, ``model.generate`` with
  ``ClassifierFreeGuidanceLogitsProcessor``, which calls the model a second time per step for
  the unconditional rows, with their own KV cache (the older way);
* ``one-forward guidance``: ``guidance_mode="one_forward"`` (the default), conditional and
  unconditional rows as one doubled batch with one KV cache.

Tokens/s counts the new LM ids of the conditional rows (2 per frame + ``<|audio_end|>``), summed
over the batch; every row writes exactly ``--seconds`` of frames (``min_frames = max_frames``).
Sampling as ``generate_audio``'s defaults (top-k 250), guidance scale 3. The vocabulary is that
of the official 100 tokens/s codec after an 8000-id text vocabulary; weights are random.

    python benchmarks/generation.py                               # tiny and base-100m, CPU, 2 threads
    python benchmarks/generation.py --models base-100m --batches 4 --seconds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# On a shared machine, OpenMP workers that spin at barriers while another process holds the
# other core make multi-threaded timings erratic (seconds per step); let them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semantilm.generation.generate import generate_tokens  # noqa: E402
from semantilm.models.lm import build_lm  # noqa: E402
from semantilm.tokens.layout import AudioTokenLayout  # noqa: E402

MODES = {  # column -> generate_tokens arguments
    "no guidance": dict(guidance_scale=1.0),
    "two-call guidance": dict(guidance_scale=3.0, guidance_mode="two_calls"),
    "one-forward guidance": dict(guidance_scale=3.0, guidance_mode="one_forward"),
}


def layout() -> AudioTokenLayout:
    return AudioTokenLayout(text_vocab_size=8000, semantic_vocab_size=16384, acoustic_vocab_size=8192, frame_rate=50.0)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_modes(model, lay: AudioTokenLayout, batch: int, frames: int, device: str, repeats: int) -> dict[str, float]:
    """LM tokens/s of each of ``MODES``: the fastest of ``repeats`` rounds, each round running
    every mode once in turn (so that a load spike from other processes hits all modes alike)."""
    prompt = [1] + list(range(2, 14)) + [lay.audio_start_id]  # a 14-id "caption" prompt
    uncond = [1, lay.audio_start_id]
    common = dict(unconditional_prompts=[uncond] * batch, do_sample=True, top_k=250, progress=False)
    for mode in MODES.values():  # warm-up
        generate_tokens(model, lay, [prompt] * batch, 2, min_frames=2, **common, **mode)
    best = dict.fromkeys(MODES, float("inf"))
    for r in range(repeats):
        for name, mode in MODES.items():
            torch.manual_seed(r)
            sync(device)
            t0 = time.perf_counter()
            _, lengths = generate_tokens(model, lay, [prompt] * batch, frames, min_frames=frames, **common, **mode)
            sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
            assert bool((lengths == frames).all()), lengths
    return {name: batch * (2 * frames + 1) / t for name, t in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny", "base-100m"], help="configs/lm/<name>.yaml")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--seconds", nargs="+", type=float, default=None,
                    help="audio seconds per model (default: 4 for tiny, 2 for the others)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds; the fastest run counts (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lay = layout()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"device {args.device}, {args.threads} threads (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), "
          f"torch {torch.__version__}"
          + (f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else ""))
    print()
    cols = list(MODES)
    print("| model | params | batch | frames | " + " | ".join(f"{c} (tok/s)" for c in cols)
          + " | one-forward / two-call |")
    print("|---|---|---|---|" + "---|" * len(cols) + "---|")
    for i, name in enumerate(args.models):
        model = build_lm(lay, ROOT / "configs" / "lm" / f"{name}.yaml", seed=0).to(args.device).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        seconds = args.seconds[min(i, len(args.seconds) - 1)] if args.seconds else (4.0 if name == "tiny" else 2.0)
        frames = lay.frames_for_seconds(seconds)
        for batch in args.batches:
            rates = time_modes(model, lay, batch, frames, args.device, args.repeats)
            ratio = rates["one-forward guidance"] / rates["two-call guidance"]
            print(f"| {name} | {params:.1f}M | {batch} | {frames} | "
                  + " | ".join(f"{rates[c]:.0f}" for c in cols) + f" | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
