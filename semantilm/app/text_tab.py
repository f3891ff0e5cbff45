"""The "Text to audio" tab: captions -> clips, the first one heard while it is generated."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from semantilm.app.backend import Backend
from semantilm.app.runs import Finished, check_clip_count, parse_captions, run_stream
from semantilm.app.widgets import ClipGrid, clip_grid, page_errors, read_settings, settings_panel


def text_run(backend: Backend, grid: ClipGrid, work_dir: Path):
    """The Generate button's function: (caption text, *settings) -> grid updates, streamed."""

    @page_errors
    def generate(caption_text, *values):
        captions = parse_captions(caption_text)
        name, settings = read_settings(list(values), guidance=True)
        check_clip_count(len(captions), settings)
        labels = [f"{c} (take {k + 1})" if settings.takes > 1 else c for c in captions for k in range(settings.takes)]
        stream = backend.text_stream(name, captions, settings)
        for event in run_stream(backend, stream, labels, work_dir, "generated from text"):
            yield grid.finished(event) if isinstance(event, Finished) else grid.progress(event)

    return generate


def text_tab(backend: Backend, work_dir: Path) -> None:
    """Build the tab's components and events inside the current ``gr.Blocks``."""
    gr.Markdown("Type one caption per line; each gets its takes, side by side. The first clip plays while "
                "it is generated.")
    caption = gr.Textbox(label="caption(s)", lines=2, value="a steady sine tone at 440 Hz",
                         placeholder="a steady sine tone at 440 Hz", elem_id="semantilm-caption")
    panel = settings_panel(backend, guidance=True, seconds_label="seconds", page="semantilm-text")
    with gr.Row():
        run = gr.Button("Generate", variant="primary", elem_id="semantilm-generate")
        stop = gr.Button("Stop", variant="stop", elem_id="semantilm-stop")
    grid = clip_grid("playing while generated (first clip)")
    event = run.click(text_run(backend, grid, work_dir), [caption, *panel.inputs()], grid.outputs(),
                      api_name="page_text_to_audio", api_visibility="private", concurrency_id="model", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_visibility="private")
