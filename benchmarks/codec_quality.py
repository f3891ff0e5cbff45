"""Quality of a trained codec on held-out synthetic tones, as a markdown section.

Round trips (encode -> decode, DPM-Solver++ 25 steps, seeded) of sine tones that were not
training clips, with :func:`codec.eval.quality.tone_round_trip`:

* tones on the 100 Hz grid (200 - 1000 Hz), the pitches a hop-160 HiFi-GAN can render for a steady
  input (docs/codec_training.md), and quarter tones between the synthetic set's notes;
* per set: the fraction whose decoded dominant frequency is within 3 %, and the mel distance to the
  input next to the one of decoding the same tokens shuffled across frames and clips;
* the grid tones' pitch pooled over 12 draws (peaks 0.3 / 0.4 / 0.5 / 0.6 x 3 decode noise seeds,
  :func:`codec.eval.quality.pitch_over_draws`): one draw of 9 tones moves by 11 % per tone;
* where a pitch error comes from: whether the tokens tell tones 50 Hz apart from each other
  across levels (:func:`~codec.eval.quality.token_pitch_identification`), and how far the
  diffusion decoder puts each grid tone's mel peak from the input's, as a bias and a spread
  (:func:`~codec.eval.quality.decoded_mel_peak_error`).

    python benchmarks/codec_quality.py --codec tiny >> codec/pretrained/tiny/TRAINING.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codec.eval.quality import (  # noqa: E402
    decoded_mel_peak_error,
    pitch_over_draws,
    token_pitch_identification,
    tone_round_trip,
)
from codec.model import SemantiCodec  # noqa: E402
from codec.sampling import DecodeSettings  # noqa: E402

GRID = [200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codec", default="tiny", help="embedded codec name or save_pretrained folder (default tiny)")
    p.add_argument("--steps", type=int, default=25, help="DPM-Solver++ steps (default 25)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = SemantiCodec.from_pretrained(args.codec)
    settings = DecodeSettings(sampler="dpmsolver++", steps=args.steps)
    start = time.perf_counter()
    rows = []
    for name, kwargs in (("100 Hz grid, 200-1000 Hz (9 tones, peak 0.3)", {"frequencies": GRID, "peak": 0.3}),
                         ("quarter tones 135-1017 Hz (24 tones, peak 0.5)", {"count": 24})):
        r = tone_round_trip(codec, settings=settings, **kwargs)
        misses = ", ".join(f"{t['frequency']:.0f}->{t['measured']:.0f}" for t in r.tones if not t["ok"])
        rows.append(f"| {name} | {r.pitch_accuracy:.0%} | {r.mel_distance:.3f} | {r.shuffled_mel_distance:.3f} | "
                    f"{misses or '-'} |")
    print(f"\n## Measured quality (`python benchmarks/codec_quality.py --codec {args.codec}`)\n")
    print(f"Held-out sine tones (not training clips), encode -> decode with DPM-Solver++ {args.steps} steps; "
          "pitch = dominant frequency of the middle half within 3 %; mel distance = mean |log-mel| difference "
          "to the input, next to decoding the same tokens shuffled across frames and clips.\n")
    print("| tones | pitch within 3 % | mel distance | shuffled tokens | misses (Hz asked -> measured) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    pooled = pitch_over_draws(codec, GRID, settings=settings)
    hits, total = sum(ok for ok, _ in pooled.values()), sum(n for _, n in pooled.values())
    print(f"\nGrid tones pooled over peaks 0.3, 0.4, 0.5, 0.6 x noise seeds 0, 1, 2 (phase seed 1): "
          f"pitch within 3 % for {hits / total:.0%} ({hits}/{total}).\n")
    print("| Hz | " + " | ".join(f"{f:.0f}" for f in pooled) + " |")
    print("|---|" + "---|" * len(pooled))
    print("| within 3 % | " + " | ".join(f"{ok}/{n}" for ok, n in pooled.values()) + " |")
    fine = [float(f) for f in range(200, 1001, 50)]
    told = token_pitch_identification(codec, fine)
    err = decoded_mel_peak_error(codec, GRID, settings=settings)
    print(f"\nWhere the pitch error comes from. Tokens: of {len(fine)} tones 50 Hz apart (200-1000 Hz) at levels "
          "0.3 / 0.4 / 0.5 / 0.6, the closest token sequence (fewest differing ids) at another level is the same "
          "tone's for " + ", ".join(f"{n} ids {ok}/{total}" for n, (ok, total) in told.items())
          + f". Decoder: the decoded mel's peak minus the input's (mel bins, parabolic; peaks 0.3 / 0.5 x noise "
          f"seeds 0, 1, 2; mean |error| {err.mean_abs:.2f}):\n")
    print("| Hz | " + " | ".join(f"{f:.0f}" for f in err.frequencies) + " |")
    print("|---|" + "---|" * len(err.frequencies))
    print("| mean (bias) | " + " | ".join(f"{b:+.2f}" for b in err.bias) + " |")
    print("| standard deviation (spread) | " + " | ".join(f"{v:.2f}" for v in err.spread) + " |")
    print(f"\n({time.perf_counter() - start:.0f} s, {torch.get_num_threads()} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
