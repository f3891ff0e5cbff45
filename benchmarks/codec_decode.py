"""Decode speed, memory and sampler accuracy of the SemantiCodec diffusion decoder.

Compares, on the full-size decoder of one variant:

* ``official-loop``: the official way -- one window at a time, the unconditional and the
  conditional UNet passes as two separate calls per step (written here on the same modules);
* ``batched``: :meth:`DiffusionDecoder.decode` -- all windows of the batch in one UNet call,
  cond + uncond in one forward;
* DPM-Solver++ at several step counts.

For each sampler / step count it also reports the distance of the final latent to a
reference from the same x_T: a deterministic DDIM (eta = 0) with ``--reference-steps`` steps
(200 by default), as relative L2 ``||z - z_ref|| / ||z_ref||`` (mean over windows).

Weights: the parity fixtures' stand-in fill when ``../shared/parity`` exists (``--weights
filled``), otherwise random; timing does not depend on the values. Peak memory: on CUDA the
allocator peak; on CPU the peak resident-set growth during the call (sampled every 5 ms).

    python benchmarks/codec_decode.py --quick              # minutes on a laptop CPU
    python benchmarks/codec_decode.py                      # full table (about an hour on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codec.config import SemantiCodecConfig  # noqa: E402
from codec.decoder import DiffusionDecoder  # noqa: E402
from codec.sampling import DecodeSettings, build_scheduler  # noqa: E402
from codec.windowing import overlap_add  # noqa: E402


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakMemory:
    """Peak memory growth (bytes) during a ``with`` block: CUDA allocator or CPU RSS."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            gc.collect()
            _malloc_trim()  # hand freed heap back to the OS so that RSS growth reflects this call
            self.base = self._rss()
            self._stop = threading.Event()
            self._max = self.base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._max, self._rss()) - self.base


def build_decoder(config: SemantiCodecConfig, weights: str) -> tuple[DiffusionDecoder, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    decoder = DiffusionDecoder(config).eval()
    if weights == "filled":
        from tests.codec.official_decoder import load_official_decoder
        from tests.parity_weights import official_decoder_state, official_decoder_tables

        name = f"r{config.token_rate}_v{config.semantic_vocab_size}"
        load_official_decoder(decoder, official_decoder_state(name))
        acoustic, semantic = official_decoder_tables(name)
    else:
        acoustic = torch.randn(config.acoustic_codebook_size, config.feature_dim) * 0.05
        semantic = torch.randn(config.semantic_codebook_size, config.feature_dim)
    return decoder, acoustic, semantic


@torch.inference_mode()
def official_loop(decoder: DiffusionDecoder, tokens, acoustic, semantic, noise, steps: int, cfg: float):
    """The official decode: windows one by one, uncond and cond UNet passes as separate calls."""
    c = decoder.config
    dtype = next(decoder.unet.parameters()).dtype
    plan = decoder.plan_windows([tokens.shape[1]] * tokens.shape[0])
    features = decoder.window_features(tokens, plan, acoustic, semantic)
    waves, latents_out = [], []  # the official loop also runs VAE + vocoder window by window
    for i in range(len(plan)):
        cond, uncond = decoder.context(features[i : i + 1])
        sched = build_scheduler(c, "ddim", steps, device=cond.device)
        x = noise[i : i + 1, 0]
        for k, t in enumerate(sched.timesteps):
            t = int(t)
            tt = torch.tensor([t], device=x.device)
            v_u = decoder.unet(x.to(dtype), tt, encoder_hidden_states=uncond.to(dtype)).sample.float()
            v_c = decoder.unet(x.to(dtype), tt, encoder_hidden_states=cond.to(dtype)).sample.float()
            v = v_u + cfg * (v_c - v_u)
            x = sched.step(v, t, x, eta=1.0, variance_noise=noise[i : i + 1, k + 1], return_dict=False)[0]
        latents_out.append(x)
        waves.append(decoder.latents_to_waveform(x)[1])
    out = [overlap_add(torch.cat([waves[i] for i, b in enumerate(plan.clip) if b == clip]), c.window_overlap_samples)
           for clip in range(tokens.shape[0])]
    return out, torch.cat(latents_out)  # (waveforms per clip, final latents per window)


def decode_with_latents(decoder: DiffusionDecoder, *args, steps: int, sampler: str = "ddim", eta: float = 1.0,
                        **kwargs):
    """decoder.decode(...) with DecodeSettings(sampler, steps, eta=eta) that also returns the final
    latents of every window."""
    captured = []
    original = decoder.latents_to_waveform

    def recording(latents, *args):
        captured.append(latents)
        return original(latents, *args)

    decoder.latents_to_waveform = recording
    try:
        out = decoder.decode(*args, settings=DecodeSettings(sampler=sampler, steps=steps, eta=eta), **kwargs)
    finally:
        del decoder.latents_to_waveform
    return out, torch.cat(captured)


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--token-rate", type=int, default=100)
    p.add_argument("--vocab", type=int, default=16384)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--ddim-steps", type=int, default=50, help="official sampler steps; 0 skips it")
    p.add_argument("--steps-list", type=int, nargs="+", default=[5, 10, 15, 20, 25], help="DPM-Solver++ steps")
    p.add_argument("--reference-steps", type=int, default=200)
    p.add_argument("--skip-official", action="store_true", help="do not time the official-style loop")
    p.add_argument("--skip-quality", action="store_true", help="do not compute the reference / distances")
    p.add_argument("--unet-only", action="store_true",
                   help="only time one sampler step per window: official (2 UNet calls of batch 1 per window) "
                        "vs batched (1 call of batch 2 x windows), median of --repeats interleaved runs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--with-eta0", action="store_true", help="also time deterministic DDIM (eta = 0)")
    p.add_argument("--quick", action="store_true", help="batch 1, 10 DDIM steps, DPM 5/10, 50-step reference")
    p.add_argument("--weights", choices=["filled", "random"], default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tiny", action="store_true", help="tiny config with random weights (smoke test of this script)")
    args = p.parse_args()
    if args.quick:
        args.batch_sizes, args.ddim_steps, args.steps_list, args.reference_steps = [1], 10, [5, 10], 50
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights is None:
        args.weights = "filled" if (REPO.parent / "shared" / "parity" / "fill.py").is_file() else "random"

    device = torch.device(args.device)
    if args.tiny:
        config, args.weights = SemantiCodecConfig.tiny(args.token_rate), "random"
    else:
        config = SemantiCodecConfig.official(args.token_rate, args.vocab, semantic_codebook_size=args.vocab // 2)
    decoder, acoustic, semantic = build_decoder(config, args.weights)
    decoder.to(device=device, dtype=getattr(torch, args.dtype))
    acoustic, semantic = acoustic.to(device), semantic.to(device)
    frames = config.num_frames(int(args.seconds * config.sample_rate))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# decoder {config.name}: {args.seconds:g} s = {frames} frames, device {device} "
          f"({name}, {torch.get_num_threads()} threads), {args.dtype}, {args.weights} weights")
    if args.unet_only:
        unet_step_table(decoder, config, args, device)
        return
    print("| method | batch | steps | UNet calls/step | wall s | RTF (wall / audio s) | peak mem MiB | rel L2 to ref |")
    print("|---|---|---|---|---|---|---|---|")
    for bs in args.batch_sizes:
        run_batch(decoder, config, acoustic, semantic, frames, bs, args, device)


@torch.inference_mode()
def unet_step_table(decoder: DiffusionDecoder, config: SemantiCodecConfig, args, device) -> None:
    """Seconds per sampler step (all windows, CFG) for the official call pattern vs one batched call."""
    import statistics

    dtype = next(decoder.unet.parameters()).dtype
    print("| windows | official: 2 x windows UNet calls of batch 1, s/step | batched: 1 call of batch "
          "2 x windows, s/step | speed-up |")
    print("|---|---|---|---|")
    shape = (config.latent_channels, config.latent_time, config.latent_freq)
    for n in args.batch_sizes:
        x = torch.randn(n, *shape, device=device, dtype=dtype)
        ctx = torch.randn(2 * n, config.window_tokens, config.context_dim, device=device, dtype=dtype)
        t = torch.full((2 * n,), 501, device=device)

        def official(n=n, x=x, t=t, ctx=ctx):
            for i in range(n):
                decoder.unet(x[i : i + 1], t[:1], encoder_hidden_states=ctx[i : i + 1])
                decoder.unet(x[i : i + 1], t[:1], encoder_hidden_states=ctx[n + i : n + i + 1])

        def batched(x=x, t=t, ctx=ctx):
            decoder.unet(torch.cat([x, x]), t, encoder_hidden_states=ctx)

        times: dict[str, list[float]] = {"official": [], "batched": []}
        batched()  # warm-up
        for _ in range(args.repeats):
            for name, fn in (("official", official), ("batched", batched)):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t0)
        o, b = statistics.median(times["official"]), statistics.median(times["batched"])
        print(f"| {n} | {o:.2f} | {b:.2f} | {o / b:.2f}x |", flush=True)


def run_batch(decoder, config, acoustic, semantic, frames: int, bs: int, args, device) -> None:
    """Print the table rows of one batch size."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.stack([torch.cat([torch.randint(0, config.semantic_codebook_size, (frames, 1), generator=g),
                                     torch.randint(0, config.acoustic_codebook_size, (frames, 1), generator=g)], -1) for _ in range(bs)])
    n_windows = len(decoder.plan_windows([frames] * bs))
    draws = max(args.ddim_steps, args.reference_steps) + 2
    noise = decoder.draw_noise(n_windows, draws, torch.Generator().manual_seed(1), device)
    audio_s = bs * args.seconds
    if device.type == "cuda":  # first calls pay for CUDA context, kernel selection and allocator growth
        official_loop(decoder, tokens, acoustic, semantic, noise[:, :3], 2, 2.0)
        decode_with_latents(decoder, tokens, acoustic, semantic, steps=2, noise=noise[:, :3], batch_size=bs)
        decode_with_latents(decoder, tokens, acoustic, semantic, steps=2, sampler="dpmsolver++", noise=noise[:, :1],
                            batch_size=bs)
    ref = None
    if not args.skip_quality:
        t0 = time.perf_counter()
        _, ref = decode_with_latents(decoder, tokens, acoustic, semantic, steps=args.reference_steps, eta=0.0,
                                     noise=noise[:, : args.reference_steps + 1], batch_size=bs)
        print(f"| reference: decode(), DDIM eta=0 (took {time.perf_counter() - t0:.0f} s) | {bs} | "
              f"{args.reference_steps} | 1 | | | | 0 |", flush=True)

    def row(name: str, steps: int, calls: str, fn) -> None:
        with PeakMemory(device) as mem:
            t0 = time.perf_counter()
            _, latents = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - t0
        dist = f"{rel_l2(latents, ref):.4f}" if ref is not None else ""
        print(f"| {name} | {bs} | {steps} | {calls} | {wall:.1f} | {wall / audio_s:.2f} | {mem.peak / 2**20:.0f} "
              f"| {dist} |", flush=True)

    s = args.ddim_steps
    if not args.skip_official and s > 0:
        row("official loop, DDIM eta=1", s, f"{2 * n_windows}",
            lambda: official_loop(decoder, tokens, acoustic, semantic, noise[:, : s + 1], s, 2.0))
    if s > 0:  # --ddim-steps 0 times the other samplers alone (each in a fresh process)
        row("decode(), DDIM eta=1", s, "1", lambda: decode_with_latents(
            decoder, tokens, acoustic, semantic, steps=s, noise=noise[:, : s + 1], batch_size=bs))
    if args.with_eta0 and s > 0:
        row("decode(), DDIM eta=0", s, "1", lambda: decode_with_latents(
            decoder, tokens, acoustic, semantic, steps=s, eta=0.0, noise=noise[:, : s + 1], batch_size=bs))
    for k in args.steps_list:
        row("decode(), DPM-Solver++ 2M", k, "1", lambda k=k: decode_with_latents(
            decoder, tokens, acoustic, semantic, steps=k, sampler="dpmsolver++", noise=noise[:, :1], batch_size=bs))

if __name__ == "__main__":
    main()
