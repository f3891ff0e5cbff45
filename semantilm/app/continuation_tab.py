"""The "Continuation" tab: an uploaded or recorded clip, continued by the LM."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from semantilm.app.backend import AppInputError, Backend, read_audio
from semantilm.app.runs import Finished, check_clip_count, run_stream
from semantilm.app.widgets import ClipGrid, clip_grid, page_errors, read_settings, settings_panel


def continuation_run(backend: Backend, grid: ClipGrid, work_dir: Path):
    """The Continue button's function: (audio file, *settings) -> grid updates, streamed."""

    @page_errors
    def continue_clip(audio_path, *values):
        if not audio_path:
            raise AppInputError("audio prompt: no audio given; upload a file or record one, then press Continue.")
        wave, rate = read_audio(audio_path, "audio prompt")
        name, settings = read_settings(list(values), guidance=False)
        check_clip_count(1, settings)
        labels = [f"continuation (take {k + 1})" for k in range(settings.takes)]
        stream = backend.continuation_stream(name, wave, rate, settings)
        for event in run_stream(backend, stream, labels, work_dir, f"continuation of {Path(audio_path).name}"):
            yield grid.finished(event) if isinstance(event, Finished) else grid.progress(event)

    return continue_clip


def continuation_tab(backend: Backend, work_dir: Path) -> None:
    """Build the tab's components and events inside the current ``gr.Blocks``."""
    gr.Markdown("Upload or record a clip; the LM writes what comes next (each clip plays the prompt, as the codec decodes it, then the new part).")
    prompt = gr.Audio(label="audio prompt", sources=["upload", "microphone"], type="filepath",
                      elem_id="semantilm-prompt")
    panel = settings_panel(backend, guidance=False, seconds_label="seconds to add", page="semantilm-continuation")
    with gr.Row():
        run = gr.Button("Continue", variant="primary", elem_id="semantilm-continue")
        stop = gr.Button("Stop", variant="stop")
    grid = clip_grid("playing while generated (first take)")
    event = run.click(continuation_run(backend, grid, work_dir), [prompt, *panel.inputs()], grid.outputs(),
                      api_name="page_continuation", api_visibility="private", concurrency_id="model", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_visibility="private")
