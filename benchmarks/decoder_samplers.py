"""Decoder samplers against the deterministic reference: distance vs steps, and a recommended default.

For every sampler of ``codec.sampling.SAMPLERS`` (DDIM here with eta = 0) and every step count,
one window (10.24 s) of random tokens is decoded from the same x_T and compared with a 200-step
deterministic DDIM (eta = 0) from that x_T, with the official guidance (``config.cfg_scale``, 2):

* latent rel L2: ``||z - z_ref|| / ||z_ref||`` of the final latents (as ``codec_decode.py``);
* mel rel RMS: RMS of ``mel - mel_ref`` (VAE decoder output, log-mel) over the standard
  deviation of ``mel_ref`` (the log-mel's offset would make a plain relative RMS look small).

The bar is the official DDIM with 50 steps and eta = 0. The recommended default is the sampler
with the fewest UNet evaluations at <= 12 steps whose distances (latent, and mel unless
``--no-mel``) are no worse than the bar's.

Full-size decoder (``--token-rate``, vocabulary 16384) with the parity fixtures' filled weights
when ``../shared/parity`` exists (``tests/parity_weights.py``), random weights otherwise. UNet
calls are memoised on (timestep, latents, context), so samplers that start at t = 999 from x_T
share that call; ``--cache FILE`` keeps the reference and bar latents for the next run.

    python benchmarks/decoder_samplers.py --small                  # smoke test (tiny config, 1.28 s window)
    python benchmarks/decoder_samplers.py                          # CPU: steps 8 10 12, ~20 min on 2 idle cores
    python benchmarks/decoder_samplers.py --device cuda            # steps 5 8 10 12 15 25 50
    python benchmarks/decoder_samplers.py --samplers unipc dpm++3m --steps 6 9 --cache outputs/sampler_ref.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codec.config import SemantiCodecConfig  # noqa: E402
from codec.decoder import DiffusionDecoder  # noqa: E402
from codec.sampling import SAMPLER_SPECS, SAMPLERS, DecodeSettings, num_noise_draws, num_sampler_steps  # noqa: E402
from plumbing.io import atomic_write  # noqa: E402

GPU_STEPS = (5, 8, 10, 12, 15, 25, 50)
CPU_STEPS = (8, 10, 12)
SMALL_STEPS = (5, 8, 12, 25)
MAX_DEFAULT_STEPS = 12


@dataclass
class Run:
    """One decode of the window: its sampler, steps, UNet evaluations, wall time and distances."""

    name: str
    steps: int
    evaluations: int
    seconds: float
    latent: float
    mel: float | None


class MemoisedPredict:
    """``decoder.predict`` memoised on (timestep, guidance, latents, context): a repeated call
    (every sampler's first step from x_T at the same timestep) costs no UNet forward."""

    def __init__(self, decoder: DiffusionDecoder) -> None:
        self.predict = decoder.predict
        self.memo: dict[tuple, torch.Tensor] = {}
        self.forwards = 0
        self.hits = 0

    @staticmethod
    def _digest(*tensors: torch.Tensor) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for t in tensors:
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        return h.digest()

    def __call__(self, latents, timestep, context, cfg_scale):
        key = (float(timestep), float(cfg_scale), self._digest(latents, context))
        if key in self.memo:
            self.hits += 1
            return self.memo[key].clone()
        self.forwards += 1
        out = self.predict(latents, timestep, context, cfg_scale)
        self.memo[key] = out
        return out


def build(args) -> tuple[DiffusionDecoder, torch.Tensor, torch.Tensor, str]:
    """(decoder on the device, acoustic codebook, semantic centroids, a description of the weights)."""
    torch.manual_seed(0)
    if args.small:
        config = SemantiCodecConfig.tiny(args.token_rate, segment_frames=128, latent_time=32, unet_block_channels=(32, 32))
        decoder, weights = DiffusionDecoder(config).eval(), "random"
        acoustic = torch.randn(config.acoustic_codebook_size, config.feature_dim) * 0.05
        semantic = torch.randn(config.semantic_codebook_size, config.feature_dim)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from codec_decode import build_decoder

        config = SemantiCodecConfig.official(args.token_rate, 16384, semantic_codebook_size=8192)
        weights = "filled" if (REPO.parent / "shared" / "parity" / "fill.py").is_file() else "random"
        decoder, acoustic, semantic = build_decoder(config, weights)
    decoder.to(device=args.device, dtype=getattr(torch, args.dtype))
    return decoder, acoustic.to(args.device), semantic.to(args.device), weights


def decode(decoder: DiffusionDecoder, window, sampler: str, steps: int) -> tuple[torch.Tensor, float]:
    """(final latents, wall seconds) of the window from its x_T (eta 0: DDIM reads no step noise)."""
    tokens, tables, x_t = window
    noise = torch.cat([x_t, x_t.new_zeros(1, num_noise_draws(sampler, steps) - 1, *x_t.shape[2:])], dim=1)
    t0 = time.perf_counter()
    latents = decoder.decode_latents(tokens, *tables, settings=DecodeSettings(sampler=sampler, steps=steps, eta=0.0 if sampler == "ddim" else None),
                                     noise=noise)[0]
    if latents.is_cuda:
        torch.cuda.synchronize()
    return latents, time.perf_counter() - t0


def mel_of(decoder: DiffusionDecoder, latents: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return decoder.latents_to_mel(latents).float()


def reference_latents(decoder, window, args, tag: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(200-step reference, 50-step bar, seconds of the bar or NaN) -- from ``--cache`` when it matches."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        with safe_open(str(cache), framework="pt") as f:
            if f.metadata() == tag:
                log(f"reference and bar from {cache}")
                return f.get_tensor("reference").to(args.device), f.get_tensor("bar").to(args.device), float("nan")
            log(f"{cache} was made with other settings; recomputing")
    log(f"reference: DDIM eta 0, {args.reference_steps} steps ...")
    reference, seconds = decode(decoder, window, "ddim", args.reference_steps)
    per_call = seconds / num_sampler_steps("ddim", args.reference_steps)
    log(f"  {seconds:.0f} s ({per_call:.2f} s per UNet evaluation; the bar and the samplers need about "
        f"{(args.bar_steps + args.planned) * per_call / 60:.0f} min more)")
    bar, bar_seconds = decode(decoder, window, "ddim", args.bar_steps)
    if cache is not None:
        tensors = {"reference": reference.cpu().contiguous(), "bar": bar.cpu().contiguous()}
        atomic_write(cache, lambda tmp: save_file(tensors, tmp, metadata=tag))
        log(f"saved the reference and bar to {cache}")
    return reference, bar, bar_seconds


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def rel_rms_of_spread(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt() / b.std())


def recommend(runs: list[Run], bar: Run) -> str:
    """The fastest sampler at <= 12 steps no worse than the bar (latent and, when measured, mel)."""
    def no_worse(r: Run) -> bool:
        return r.latent <= bar.latent and (r.mel is None or bar.mel is None or r.mel <= bar.mel)

    fast = [r for r in runs if r.steps <= MAX_DEFAULT_STEPS]
    good = sorted((r for r in fast if no_worse(r)), key=lambda r: (r.evaluations, r.latent))
    if good:
        r = good[0]
        return (f"Recommended default: {r.name} with {r.steps} steps ({r.evaluations} UNet evaluations; "
                f"latent rel L2 {r.latent:.4f} <= {bar.latent:.4f} of {bar.name}).")
    if not fast:
        return f"No run at <= {MAX_DEFAULT_STEPS} steps: none can be recommended."
    best = min(fast, key=lambda r: r.latent)
    mel = "" if best.mel is None or bar.mel is None else f", mel rel RMS {best.mel:.4f} vs {bar.mel:.4f}"
    return (f"No recommended default: nothing at <= {MAX_DEFAULT_STEPS} steps is as close as {bar.name}; the closest "
            f"is {best.name} with {best.steps} steps (latent rel L2 {best.latent:.4f} vs {bar.latent:.4f}{mel}).")


def table(runs: list[Run], bar: Run, reference_steps: int) -> str:
    def cell(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    lines = ["| sampler | steps | UNet evaluations | latent rel L2 | mel rel RMS | wall s |", "|---|---|---|---|---|---|",
             f"| ddim eta 0 (reference) | {reference_steps} | {num_sampler_steps('ddim', reference_steps)} | 0 | "
             f"{'' if bar.mel is None else 0} | |"]
    for r in [bar, *runs]:
        wall = "" if r.seconds != r.seconds else f"{r.seconds:.1f}"  # NaN: read from the cache
        lines.append(f"| {r.name} | {r.steps} | {r.evaluations} | {cell(r.latent)} | {cell(r.mel)} | {wall} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS),
                   help="samplers to measure (ddim runs with eta 0); default all")
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help=f"step counts; default {' '.join(map(str, GPU_STEPS))} on a GPU, "
                        f"{' '.join(map(str, CPU_STEPS))} on CPU, {' '.join(map(str, SMALL_STEPS))} with --small")
    p.add_argument("--reference-steps", type=int, default=200)
    p.add_argument("--bar-steps", type=int, default=50, help="steps of the DDIM (eta 0) bar")
    p.add_argument("--small", action="store_true", help="tiny config with random weights (smoke test)")
    p.add_argument("--token-rate", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="seed of the tokens and of x_T")
    p.add_argument("--no-mel", action="store_true", help="skip the VAE decode and the mel distance")
    p.add_argument("--cache", default=None, help="safetensors file holding the reference and bar latents")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = list(SMALL_STEPS if args.small else GPU_STEPS if args.device.startswith("cuda") else CPU_STEPS)
    for name in ("steps", "reference_steps", "bar_steps"):
        values = getattr(args, name) if name == "steps" else [getattr(args, name)]
        if any(not 1 <= v <= 1000 for v in values):
            p.error(f"--{name.replace('_', '-')} must be between 1 and 1000, got {values}")
    return args


@torch.inference_mode()
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    decoder, acoustic, semantic, weights = build(args)
    c = decoder.config
    log(f"decoder {c.name} ({weights} weights, {args.dtype}) on {args.device} ({torch.get_num_threads()} threads), "
        f"built in {time.perf_counter() - t0:.0f} s")
    g = torch.Generator().manual_seed(args.seed)
    frames = c.window_tokens
    tokens = torch.stack([torch.randint(0, c.semantic_codebook_size, (1, frames), generator=g),
                          torch.randint(0, c.acoustic_codebook_size, (1, frames), generator=g)], dim=-1)
    x_t = decoder.draw_noise(1, 1, g, "cpu").to(args.device)
    window = (tokens, (acoustic, semantic), x_t)
    memo = MemoisedPredict(decoder)
    decoder.predict = memo
    plan = [(s, k) for s in args.samplers for k in args.steps]
    args.planned = sum(num_sampler_steps(s, k) for s, k in plan)
    log(f"plan: reference {args.reference_steps} + bar {args.bar_steps} + {args.planned} sampler UNet evaluations")

    config_digest = hashlib.blake2b(repr(dataclasses.asdict(c)).encode(), digest_size=8).hexdigest()
    tag = {"config": f"{c.name} {config_digest}", "weights": weights, "dtype": args.dtype, "device": torch.device(args.device).type,
           "seed": str(args.seed), "reference_steps": str(args.reference_steps), "bar_steps": str(args.bar_steps)}
    reference, bar_latents, bar_seconds = reference_latents(decoder, window, args, tag)
    mel_ref = None if args.no_mel else mel_of(decoder, reference)

    def measured(name: str, steps: int, sampler: str, latents: torch.Tensor, seconds: float) -> Run:
        mel = None if mel_ref is None else rel_rms_of_spread(mel_of(decoder, latents), mel_ref)
        return Run(name, steps, num_sampler_steps(sampler, steps), seconds, rel_l2(latents, reference), mel)

    bar = measured("ddim eta 0 (bar)", args.bar_steps, "ddim", bar_latents, bar_seconds)
    runs = []
    for i, (sampler, steps) in enumerate(plan):
        latents, seconds = decode(decoder, window, sampler, steps)
        runs.append(measured("ddim eta 0" if sampler == "ddim" else sampler, steps, sampler, latents, seconds))
        r = runs[-1]
        log(f"[{i + 1}/{len(plan)}] {sampler} {steps} steps: {seconds:.1f} s, latent {r.latent:.4f}"
            + ("" if r.mel is None else f", mel {r.mel:.4f}"))
    log(f"UNet forwards {memo.forwards}, memoised calls {memo.hits}; total {time.perf_counter() - t0:.0f} s")
    print(f"Decoder {c.name}, {weights} weights, {args.dtype}, {args.device}; one window, guidance "
          f"{c.cfg_scale:g}, seed {args.seed}; distances to DDIM eta 0 with {args.reference_steps} steps.\n")
    print(table(runs, bar, args.reference_steps))
    print()
    print(recommend(runs, bar))
    for name in args.samplers:
        print(f"- {name}: {SAMPLER_SPECS[name].about}")


if __name__ == "__main__":
    main()
