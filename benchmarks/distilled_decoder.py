"""The distilled decoder against its teacher: quality gate and speed (``codec.eval.distilled``).

Held-out 100 Hz grid tones (200-1000 Hz; phase seed 7, levels 0.35 / 0.55, decode noise seeds 10 / 11:
none of them the distill stage's) through encode and then the teacher (DDIM 50 steps, eta 1,
guidance 2.0), the teacher with other noise, and the student at 1, 2 and 4 steps, from the same
tokens. Prints the table and the gate (4-step pitch within 6 points of the teacher, whole decode
>= 8x faster), and writes them as JSON with ``--json``.

    python benchmarks/distilled_decoder.py                          # the embedded tiny codec, 2 threads
    python benchmarks/distilled_decoder.py --codec outputs/tiny_codec/distill/codec --json out.json
    python benchmarks/distilled_decoder.py --decoder-dtypes bfloat16   # also the student with a bf16 decoder
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from codec.eval.distilled import compare_distilled, gate, markdown_table
    from codec.fast import keep_freed_memory
    from codec.model import SemantiCodec

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", default="tiny", help="codec with a distilled decoder (default: the embedded tiny)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the cores of the machine in docs/codec_distillation.md)")
    p.add_argument("--noise-seeds", type=int, nargs="+", default=[10, 11])
    p.add_argument("--peaks", type=float, nargs="+", default=[0.35, 0.55])
    p.add_argument("--decoder-dtypes", nargs="*", default=[], metavar="DTYPE",
                   help="also decode the 4-step student with the whole decoder in these precisions (e.g. bfloat16)")
    p.add_argument("--json", default=None, help="also write the rows and the gate here")
    p.add_argument("--untrained", action="store_true",
                   help="baseline: replace the codec's student by a copy of the teacher UNet (what distilling starts from)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the semantilm commands that decode do
    codec = SemantiCodec.from_pretrained(args.codec)
    if args.untrained:
        from codec.student import DistilledStudent

        codec.decoder.student = DistilledStudent.from_teacher(codec.decoder, guidance_scale=codec.config.cfg_scale).eval()
    rows = compare_distilled(codec, peaks=tuple(args.peaks), noise_seeds=tuple(args.noise_seeds),
                             decoder_dtypes=tuple(args.decoder_dtypes))
    result = gate(rows)
    print(markdown_table(rows))
    print(f"\ngate (4 steps): pitch {result['student_pitch']:.0%} vs teacher {result['teacher_pitch']:.0%} "
          f"(drop {100 * result['pitch_drop']:.1f} points, at most 6), decode {result['speedup']:.1f}x faster "
          f"(at least 8): {'PASS' if result['passed'] else 'FAIL'}")
    print(f"({platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s))")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [r.as_dict() for r in rows], "gate": result,
                                               "codec": args.codec, "threads": args.threads}, indent=1))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
