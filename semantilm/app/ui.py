"""The whole app: three tabs, two API endpoints (``/generate``, ``/roundtrip``), one queue.

Model work (generation, encoding, decoding) from the pages and from the API shares one concurrency
group of size one: requests wait in Gradio's queue and run in turn, since generation seeds torch's
global random generator. The page loads nothing from outside the machine (system fonts, no
analytics), so it works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from semantilm.app.backend import Backend, GenerationSettings
from semantilm.app.codec_tab import codec_tab, roundtrip_api
from semantilm.app.continuation_tab import continuation_tab
from semantilm.app.runs import Finished, parse_captions, run_stream
from semantilm.app.text_tab import text_tab
from semantilm.app.widgets import page_errors

QUEUE_SIZE = 64  # requests waiting at most; more are told the queue is full
CSS = ".semantilm-clip audio { width: 100%; }"


@dataclass
class ServeSettings:
    """Where the app listens. No public share link: the app serves this machine (or its network with --host)."""

    host: str = "127.0.0.1"
    port: int | None = None


def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: no font is fetched from the web."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])


def generate_api(backend: Backend, work_dir: Path):
    """``/generate``: (caption, seconds) -> one wav file, with the page's default settings and seed 0."""

    @page_errors
    def generate(caption: str, seconds: float) -> str:
        captions = parse_captions(caption)[:1]
        if seconds is None:
            raise ValueError("seconds: no value given.")
        settings = GenerationSettings(seconds=float(seconds))
        stream = backend.text_stream(next(iter(backend.checkpoints)), captions, settings)
        for event in run_stream(backend, stream, captions, work_dir, "generated from text"):
            if isinstance(event, Finished):
                return str(event.clips[0].wav)
        raise RuntimeError("the generation ended without a clip")

    return generate


def build_app(backend: Backend, work_dir: Path) -> gr.Blocks:
    """The app's ``gr.Blocks`` (not yet launched); files it writes go under ``work_dir``."""
    names = ", ".join(f"`{n}`" for n in backend.checkpoints)
    with gr.Blocks(title="semantilm", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(f"## semantilm\nLM checkpoint(s) {names}; codec `{backend.codec.variant}` "
                    f"({backend.sample_rate} Hz, {float(backend.codec.frame_rate):g} frames/s).")
        with gr.Tab("Text to audio", id="text"):
            text_tab(backend, work_dir)
        with gr.Tab("Continuation", id="continuation"):
            continuation_tab(backend, work_dir)
        with gr.Tab("Codec", id="codec"):
            codec_tab(backend, work_dir)
        with gr.Column(visible=False):  # the API endpoints' own components: not shown in the page
            caption = gr.Textbox(label="caption")
            seconds = gr.Number(1.0, label="seconds")
            wav = gr.Audio(label="generated wav", type="filepath")
            audio_in = gr.Audio(label="audio", type="filepath", sources=["upload"])
            decoded = gr.Audio(label="decoded wav", type="filepath")
            scores = gr.JSON(label="metrics")
            call = gr.Button("api", visible=False)
        common = dict(concurrency_id="model", concurrency_limit=1)
        call.click(generate_api(backend, work_dir), [caption, seconds], [wav], api_name="generate", **common)
        call.click(roundtrip_api(backend, work_dir), [audio_in], [decoded, scores], api_name="roundtrip", **common)
    return app


def launch(app: gr.Blocks, work_dir: Path, serve: ServeSettings, block: bool = True):
    """Start the server (queue of ``QUEUE_SIZE``, model work one request at a time). ``block``: serve
    until interrupted; else return Gradio's ``(app, local_url, share_url)`` at once (``app.block_thread()`` waits)."""
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return app.launch(
        server_name=serve.host, server_port=serve.port, share=False, inbrowser=False, quiet=True,
        prevent_thread_lock=not block, allowed_paths=[str(work_dir)], theme=theme(), css=CSS, ssr_mode=False,
        max_file_size="100mb", footer_links=["api"], run_history=False,
    )
