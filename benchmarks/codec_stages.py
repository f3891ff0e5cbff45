"""Does a trained tiny VAE / vocoder keep pitch? Held-out sine tones through the decoder's back end.

Tones (:func:`codec.eval.quality.held_out_tones`): ``--tones`` sine waves (1 s, peak 0.5, random phase, 20 ms fades) at quarter-tone offsets
between the synthetic set's notes (MIDI 48.5 .. 83.5, 130-988 Hz), so no tone is a training
frequency. For each tone ``x`` with true frequency ``f`` and log-mel ``s`` (:mod:`codec.mel`):

* vocoder (``--vocoder DIR``): ``y = vocoder(s)``; dominant frequency of ``y`` = FFT peak of the
  middle 0.5 s (Hann window, 8x zero padding) refined by parabolic interpolation of the log
  magnitude; a tone passes when ``|f_y - f| / f < 3 %``;
* VAE (``--vae DIR``): ``s^ = VAE.decode(mode of VAE.encode(s))``; passes when the mel bin with
  the most energy (averaged over the tone's frames) is the same in ``s^`` as in ``s``; with both,
  also the vocoder on ``s^`` (the path the decoder takes).

    python benchmarks/codec_stages.py --vae outputs/codec/tiny_vae_cpu --vocoder outputs/codec/tiny_vocoder_cpu
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from codec.eval.metrics import dominant_frequency
from codec.eval.quality import held_out_tones
from codec.mel import LogMelFrontEnd
from codec.model import SemantiCodec
from codec.training.parts import resolve_codec_folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vae", help="output dir (or codec folder) of a vae stage")
    p.add_argument("--vocoder", help="output dir (or codec folder) of a vocoder stage")
    p.add_argument("--tones", type=int, default=36)
    p.add_argument("--tolerance", type=float, default=0.03)
    args = p.parse_args(argv)
    if not args.vae and not args.vocoder:
        p.error("give --vae and/or --vocoder")
    torch.set_num_threads(1)
    vae_codec = SemantiCodec.from_pretrained(resolve_codec_folder(args.vae)) if args.vae else None
    voc_codec = SemantiCodec.from_pretrained(resolve_codec_folder(args.vocoder)) if args.vocoder else None
    cfg = (vae_codec or voc_codec).config
    waves, freqs = held_out_tones(args.tones, cfg.sample_rate)
    frames = waves.shape[1] // cfg.hop_length
    with torch.inference_mode():
        mel = LogMelFrontEnd(cfg)(waves, frames)  # [T, 1, frames, bins]
        rows = []
        mels = {"true mel": mel}
        if vae_codec is not None:
            vae_mel = LogMelFrontEnd(vae_codec.config)(waves)  # the VAE takes whole segments
            vae = vae_codec.decoder.vae
            rec = vae.decode(vae.encode(vae_mel).latent_dist.mode(), return_dict=False)[0][:, :, :frames]
            same = (rec.mean(2).argmax(-1) == mel.mean(2).argmax(-1)).float().squeeze(1)
            err = (rec - mel).abs().mean()
            rows.append(f"VAE: peak mel bin kept for {int(same.sum())}/{len(same)} tones "
                        f"({100 * same.mean():.0f} %), mean |mel error| {err:.3f} (log units), "
                        f"scale_factor {float(vae_codec.decoder.scale_factor):.4f}")
            mels["VAE mel"] = rec
        if voc_codec is not None:
            for label, m in mels.items():
                out = voc_codec.decoder.vocoder(m.squeeze(1)).numpy()
                est = np.array([dominant_frequency(o[len(o) // 4: 3 * len(o) // 4], cfg.sample_rate) for o in out])
                rel = np.abs(est - freqs) / freqs
                ok = rel < args.tolerance
                rows.append(f"vocoder on {label}: within {100 * args.tolerance:.0f} % for {int(ok.sum())}/{len(ok)} "
                            f"tones ({100 * ok.mean():.0f} %), median error {100 * np.median(rel):.2f} %")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
