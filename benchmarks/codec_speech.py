"""What the embedded codecs (``tiny``, ``tiny-random``) do to speech and to tones: a markdown table.

Each clip is encoded and decoded as ``semantilm encode`` / ``decode`` do by default (DDIM, the codec's 50
steps and guidance scale; seeded), then scored against the input with the project's metrics
(:mod:`codec.eval.metrics`): STOI (0..1, intelligibility; needs ``pystoi``, from ``pip install
'semantilm[eval]'``), SI-SDR (dB) and mel distance (mean |log-mel| difference). Rows: the speech clips,
and the 100 Hz grid of held-out sine tones (:func:`codec.eval.quality.held_out_tones`, 200-1000 Hz, 1 s,
peak 0.3) of the kind the tiny codec was trained on, with the share decoded at the right pitch.

Speech comes from an audio folder (any rates; resampled to 16 kHz), or is synthesised at run time with
espeak-ng (a few English sentences; nothing is stored). Without a folder and without espeak-ng the
speech rows are skipped with a message.

    python benchmarks/codec_speech.py                        # espeak-ng speech, codecs tiny and tiny-random
    python benchmarks/codec_speech.py my_speech/ --codecs tiny path/to/save_pretrained_folder
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codec.eval.evaluate import evaluate_codec, file_clips  # noqa: E402
from codec.eval.quality import held_out_tones  # noqa: E402
from codec.model import SemantiCodec  # noqa: E402
from codec.sampling import DecodeSettings  # noqa: E402

SENTENCES = [
    "The weather turned cold before the boats came back to the harbour.",
    "Please write the numbers on the board in the order you hear them.",
    "A small dog ran across the garden and hid under the bench.",
    "She opened the window to let the morning light into the kitchen.",
    "Turn left at the second bridge and follow the river to the old mill.",
]
GRID = [200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]


def synthesize_speech(folder: Path, voice: str = "en") -> list[Path] | None:
    """One 16 kHz wav per sentence of :data:`SENTENCES`, spoken by espeak-ng; None without espeak-ng."""
    import soundfile as sf

    from codec.audio import load_audio, resample

    program = shutil.which("espeak-ng") or shutil.which("espeak")
    if program is None:
        return None
    paths = []
    for i, text in enumerate(SENTENCES):
        raw = folder / f"raw_{i}.wav"
        subprocess.run([program, "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
        wave, rate = load_audio(raw)
        path = folder / f"sentence_{i}.wav"
        sf.write(path, resample(wave, rate, 16000).numpy(), 16000, subtype="FLOAT")
        paths.append(path)
    return paths


def speech_row(name: str, clips: list, codec: SemantiCodec, settings: DecodeSettings, seed: int) -> str:
    result = evaluate_codec(codec, clips, metrics=["stoi", "si_sdr", "mel"], settings=settings, batch_size=4,
                            generator=torch.Generator().manual_seed(seed))
    m = result.means
    stoi = f"{m['stoi']:.3f}" if "stoi" in m else "not measured (pip install pystoi)"
    return (f"| {name} | speech | {len(result.clips)} | {result.seconds:.1f} | {stoi} | {m['si_sdr']:.1f} | "
            f"{m['mel']:.3f} | - |")


def tone_row(name: str, codec: SemantiCodec, settings: DecodeSettings, seed: int) -> str:
    """The grid tones: SI-SDR, mel distance, and the share whose decoded pitch (dominant frequency of the
    middle half) is within 3 % of the input's. STOI is a speech measure and is left out."""
    from codec.eval.metrics import dominant_frequency, mel_distance, si_sdr

    waves, freqs = held_out_tones(0, 16000, seconds=1.0, frequencies=GRID, peak=0.3)
    encoded = codec.encode(list(waves), 16000)
    decoded = codec.decode(encoded, settings=settings, generator=torch.Generator().manual_seed(seed))
    n = waves.shape[1]
    est = torch.nn.functional.pad(decoded.audio[:, :n], (0, max(0, n - decoded.audio.shape[1])))
    pitch = [abs(dominant_frequency(e[n // 4 : 3 * n // 4].numpy(), 16000) / f - 1) <= 0.03 for e, f in zip(est, freqs)]
    return (f"| {name} | tones 200-1000 Hz (100 Hz grid) | {len(freqs)} | {n * len(freqs) / 16000:.1f} | - | "
            f"{float(si_sdr(waves, est).mean()):.1f} | {float(mel_distance(waves, est).mean()):.3f} | "
            f"{sum(pitch)}/{len(pitch)} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("audio", nargs="?", default=None, help="folder of speech audio (default: espeak-ng sentences)")
    p.add_argument("--codecs", nargs="+", default=["tiny", "tiny-random"],
                   help="embedded codec names or save_pretrained folders (default tiny tiny-random)")
    p.add_argument("--seed", type=int, default=0, help="seed of the decoder's noise (default 0)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = DecodeSettings()  # what encode / decode use when not told: DDIM, 50 steps, eta 1
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.audio is not None:
            from codec.compress import find_audio_files

            speech, source = find_audio_files(args.audio), f"the audio files of {args.audio}"
        else:
            speech, source = synthesize_speech(Path(tmp)), "espeak-ng (voice en), 5 sentences made at run time"
            if speech is None:
                print("espeak-ng is not installed (e.g. apt-get install espeak-ng): the speech rows are skipped; "
                      "pass a folder of speech audio to measure them.", file=sys.stderr)
        speech_clips = list(file_clips(speech)) if speech else []
        rows = []
        for name in args.codecs:
            codec = SemantiCodec.from_pretrained(name)
            if speech_clips:
                rows.append(speech_row(name, speech_clips, codec, settings, args.seed))
            rows.append(tone_row(name, codec, settings, args.seed))
    print(f"\nSpeech: {source}. Round trip encode -> decode as `semantilm encode` / `decode` default to (DDIM, "
          f"{settings.steps} steps, the codec's guidance scale; seed {args.seed}). STOI 0..1 (speech "
          "intelligibility), SI-SDR in dB (the decoder does not keep phase, so tones score low even at the "
          "right pitch), mel distance = mean |log-mel| difference, pitch = decoded dominant frequency within 3 %.\n")
    print("| codec | audio | clips | seconds | STOI ↑ | SI-SDR dB ↑ | mel dist ↓ | pitch within 3 % |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n({platform.machine()} CPU, torch {torch.__version__}, {args.threads} threads, "
          f"{time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
