"""The "Codec" tab: audio -> tokens (pictures of both streams, bitrate, token file) -> audio again,
both played, with the codec's reconstruction metrics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from semantilm.app.backend import SAMPLERS, AppInputError, Backend, read_audio
from semantilm.app.pictures import tokens_png
from semantilm.app.widgets import page_errors

DEFAULT_SAMPLER, DEFAULT_STEPS = "dpmsolver++", 25


@dataclass
class Encoded:
    """One encoded clip: the input at the codec's rate, its token file and the tokens' picture."""

    reference: Path
    tokens: Path
    picture: Path
    about: str


def encode_file(backend: Backend, work_dir: Path, audio_path: str | None) -> Encoded:
    """Encode an uploaded clip; writes ``input.wav`` (at the codec's rate), ``<name>.tokens.npz`` and ``tokens.png``."""
    import soundfile as sf

    if not audio_path:
        raise AppInputError("audio: no audio given; upload a file or record one, then press Encode.")
    wave, rate = read_audio(audio_path, "audio")
    tokens, at_rate = backend.encode(wave, rate)
    folder = work_dir / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    reference = folder / "input.wav"
    sf.write(reference, at_rate.numpy(), backend.sample_rate, subtype="FLOAT")
    stem = Path(audio_path).name.split(".")[0] or "audio"
    token_file = backend.save_token_file(folder / f"{stem}.tokens.npz", tokens, f"encoded from {Path(audio_path).name}",
                                         at_rate.shape[0])
    codec = backend.codec
    picture = tokens_png(folder / "tokens.png", tokens, float(codec.frame_rate),
                         (int(codec.semantic_vocab_size), int(codec.acoustic_vocab_size)))
    seconds = at_rate.shape[0] / backend.sample_rate
    about = (f"**{tokens.shape[0]} frames** for {seconds:.2f} s of audio: {float(codec.frame_rate):g} frames/s, each a "
             f"semantic id (of {codec.semantic_vocab_size}) and an acoustic id (of {codec.acoustic_vocab_size}): "
             f"**{backend.bitrate():.0f} bits/s** (codec `{codec.variant}`).")
    return Encoded(reference, token_file, picture, about)


def decode_file(backend: Backend, work_dir: Path, token_path: str | None, sampler: str, steps, seed,
                reference: str | None = None) -> tuple[Path, dict[str, float] | None]:
    """Decode a token file to ``decoded.wav``; with the clip it was encoded from, the metrics too."""
    import soundfile as sf

    if not token_path:
        raise AppInputError("token file: none given; encode audio first or upload a .tokens.npz file.")
    if steps is None or seed is None:
        raise AppInputError("decoder steps / seed: no value given; fill them in.")
    tokens = backend.load_token_file(token_path)
    decoded = backend.decode(tokens, sampler, int(steps), int(seed))
    folder = work_dir / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    out = folder / "decoded.wav"
    sf.write(out, decoded, backend.sample_rate, subtype="PCM_16")
    scores = None
    if reference and Path(reference).is_file():
        ref, _ = sf.read(reference, dtype="float32")
        scores = backend.metrics(np.asarray(ref), decoded, backend.sample_rate)
    return out, scores


def metrics_markdown(scores: dict[str, float] | None) -> str:
    if scores is None:
        return "No metrics: the token file was not encoded from the audio above in this session."
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v:g} |" for k, v in scores.items())


def roundtrip_api(backend: Backend, work_dir: Path):
    """``/roundtrip``: audio file -> (the decoded wav, the metrics), with the page's default decoder."""

    @page_errors
    def roundtrip(audio):
        encoded = encode_file(backend, work_dir, audio)
        out, scores = decode_file(backend, work_dir, str(encoded.tokens), DEFAULT_SAMPLER, DEFAULT_STEPS, 0,
                                  str(encoded.reference))
        return str(out), scores

    return roundtrip


def codec_tab(backend: Backend, work_dir: Path) -> None:
    """Build the tab's components and events inside the current ``gr.Blocks``."""
    gr.Markdown("Encode a clip to the codec's two token streams, then decode the tokens back to audio.")
    reference = gr.State(None)  # the encoded clip at the codec's rate, for the metrics
    with gr.Row():
        audio = gr.Audio(label="audio", sources=["upload", "microphone"], type="filepath", elem_id="semantilm-codec-in")
        with gr.Column():
            encode = gr.Button("Encode", variant="primary", elem_id="semantilm-encode")
            about = gr.Markdown("")
            token_file = gr.File(label="token file (.tokens.npz): download, or upload one to decode",
                                 file_types=[".npz"], interactive=True)
    picture = gr.Image(label="tokens: semantic and acoustic ids over time", type="filepath", interactive=False)
    with gr.Row():
        sampler = gr.Dropdown(list(SAMPLERS), value=DEFAULT_SAMPLER, label="decoder sampler")
        steps = gr.Number(DEFAULT_STEPS, label="decoder steps", precision=0, minimum=1, maximum=1000)
        seed = gr.Number(0, label="seed", precision=0, minimum=0)
        decode = gr.Button("Decode", variant="primary", elem_id="semantilm-decode")
    with gr.Row():
        original = gr.Audio(label="input at the codec's rate", type="filepath", interactive=False)
        decoded = gr.Audio(label="decoded from the tokens", type="filepath", interactive=False)
    scores = gr.Markdown("")

    @page_errors
    def on_encode(path):
        e = encode_file(backend, work_dir, path)
        return str(e.picture), e.about, str(e.tokens), str(e.reference), str(e.reference)

    @page_errors
    def on_decode(path, sampler_name, n_steps, seed_value, ref):
        if isinstance(path, list):
            path = path[0] if path else None
        out, result = decode_file(backend, work_dir, path, sampler_name, n_steps, seed_value,
                                  ref if _same_clip(path, ref) else None)
        return (ref if result is not None else None), str(out), metrics_markdown(result)

    common = dict(api_visibility="private", concurrency_id="model", concurrency_limit=1)
    encode.click(on_encode, [audio], [picture, about, token_file, original, reference], api_name="page_encode", **common)
    decode.click(on_decode, [token_file, sampler, steps, seed, reference], [original, decoded, scores], api_name="page_decode",
                 **common)


def _same_clip(token_path: str | None, reference: str | None) -> bool:
    """Whether the token file is the one encoded beside ``reference`` (Gradio may have copied it: same name and size)."""
    if not token_path or not reference:
        return False
    written = [p for p in Path(reference).parent.glob("*.tokens.npz")]
    return any(p.name == Path(token_path).name and p.stat().st_size == Path(token_path).stat().st_size for p in written)
