"""Page pieces shared by the generation tabs: the settings panel, the clip grid, and the error wrapper
that turns bad input into a message in the page (``gr.Error``) instead of a stack trace."""

from __future__ import annotations

import functools
import inspect
import logging
import shutil
from dataclasses import dataclass

import gradio as gr

from semantilm.app.backend import SAMPLERS, AppInputError, Backend, GenerationSettings
from semantilm.app.runs import MAX_CLIPS, Finished, Progress

logger = logging.getLogger(__name__)

SLOTS_PER_ROW = 4


def page_errors(fn):
    """``fn`` (a function or a generator function) with its errors shown in the page as ``gr.Error``: the
    message of input errors as it is, anything unexpected as one line (the trace goes to the log)."""

    def message(err: BaseException) -> gr.Error:
        if isinstance(err, gr.Error):
            return err
        if isinstance(err, (AppInputError, ValueError, TypeError, FileNotFoundError)):
            return gr.Error(str(err), print_exception=False)
        logger.exception("the app's %s failed", fn.__name__)
        return gr.Error(f"{fn.__name__} failed: {type(err).__name__}: {err}", print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise message(err) from None

        return generator

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise message(err) from None

    return plain


@dataclass
class SettingsPanel:
    """The inputs every generation tab has, in the order ``settings()`` reads them."""

    checkpoint: gr.Dropdown
    seconds: gr.Number
    guidance: gr.Number | None
    temperature: gr.Number
    top_k: gr.Number
    sampler: gr.Dropdown
    steps: gr.Number
    seed: gr.Number
    takes: gr.Number

    def inputs(self) -> list:
        return [c for c in (self.checkpoint, self.seconds, self.guidance, self.temperature, self.top_k,
                            self.sampler, self.steps, self.seed, self.takes) if c is not None]


def settings_panel(backend: Backend, guidance: bool, seconds_label: str, page: str) -> SettingsPanel:
    """The checkpoint, length, sampling, decoder and seed inputs (defaults: the demo's settings); ``page``
    prefixes their element ids."""
    names = list(backend.checkpoints)
    longest = backend.max_seconds(names[0])
    d = GenerationSettings()
    with gr.Row():
        checkpoint = gr.Dropdown(names, value=names[0], label="LM checkpoint", scale=2)
        seconds = gr.Number(min(d.seconds, longest), label=seconds_label, minimum=0.1, step=0.1,
                            info=f"at most {longest:.2f} s with this checkpoint's context" if guidance else
                            f"prompt + new part: at most {longest:.2f} s of context", elem_id=f"{page}-seconds")
        takes = gr.Number(d.takes, label="takes", precision=0, minimum=1, maximum=MAX_CLIPS, info="clips per prompt",
                          elem_id=f"{page}-takes")
    with gr.Row():
        guide = gr.Number(d.guidance, label="guidance", minimum=0, step=0.5, info="1 = off") if guidance else None
        temperature = gr.Number(d.temperature, label="temperature", minimum=0.05, step=0.1)
        top_k = gr.Number(d.top_k, label="top-k", precision=0, minimum=0, info="0 = no limit")
    with gr.Row():
        sampler = gr.Dropdown(list(SAMPLERS), value=d.sampler, label="decoder sampler")
        steps = gr.Number(d.steps, label="decoder steps", precision=0, minimum=1, maximum=1000)
        seed = gr.Number(d.seed, label="seed", precision=0, minimum=0)
    return SettingsPanel(checkpoint, seconds, guide, temperature, top_k, sampler, steps, seed, takes)


def read_settings(values: list, guidance: bool) -> tuple[str, GenerationSettings]:
    """(checkpoint name, ``GenerationSettings``) from the panel's values, or an ``AppInputError`` naming
    the input that is missing or out of range."""
    names = ["checkpoint", "seconds", "guidance", "temperature", "top_k", "sampler", "steps", "seed", "takes"]
    if not guidance:
        names.remove("guidance")
    given = dict(zip(names, values, strict=True))
    for name, value in given.items():
        if value is None or value == "":
            raise AppInputError(f"{name.replace('_', '-')}: no value given; fill it in.")
    limits = {"seconds": (0.05, None), "guidance": (0, None), "temperature": (0.01, None), "top_k": (0, None),
              "steps": (1, 1000), "seed": (0, 2**32 - 1), "takes": (1, MAX_CLIPS)}
    for name, (low, high) in limits.items():
        if name in given and (given[name] < low or (high is not None and given[name] > high)):
            wanted = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise AppInputError(f"{name.replace('_', '-')}: {given[name]:g} is out of range; it must be {wanted}.")
    settings = GenerationSettings(
        seconds=float(given["seconds"]), guidance=float(given.get("guidance", 1.0)),
        temperature=float(given["temperature"]), top_k=int(given["top_k"]), sampler=str(given["sampler"]),
        steps=int(given["steps"]), seed=int(given["seed"]), takes=int(given["takes"]),
    )
    if settings.takes > 1 and settings.top_k == 1:
        raise AppInputError("top-k: top-k 1 draws only the likeliest id, so every take would be the same; "
                            "use top-k 2 or more (0: no limit), or one take.")
    return str(given["checkpoint"]), settings


@dataclass
class ClipGrid:
    """Where a run shows up: the live first clip, a status line, a slot per clip, the downloads."""

    live: gr.Audio | None
    status: gr.Markdown
    audios: list[gr.Audio]
    pictures: list[gr.Image]
    downloads: gr.File

    def outputs(self) -> list:
        return [c for c in (self.live, self.status, *self.audios, *self.pictures, self.downloads) if c is not None]

    def progress(self, event: Progress) -> list:
        """Updates for a chunk of the first clip: the live player and the status; the rest unchanged."""
        live = [event.wav_bytes] if self.live is not None else []
        return [*live, event.status, *[gr.skip()] * (2 * MAX_CLIPS + 1)]

    def finished(self, event: Finished) -> list:
        """Updates that show every clip in its slot, hide the unused slots and list the files."""
        audios, pictures = [], []
        for i in range(MAX_CLIPS):
            clip = event.clips[i] if i < len(event.clips) else None
            audios.append(gr.update(value=str(clip.wav) if clip else None, label=clip.label if clip else "clip",
                                    visible=clip is not None))
            pictures.append(gr.update(value=str(clip.picture) if clip else None, visible=clip is not None))
        files = [str(p) for c in event.clips for p in (c.wav, c.tokens)]
        live = [gr.skip()] if self.live is not None else []
        return [*live, event.status, *audios, *pictures, files]

    def cleared(self) -> list:
        """Updates that empty the grid before a new run."""
        live = [None] if self.live is not None else []
        return [*live, "starting ...", *[gr.update(value=None)] * (2 * MAX_CLIPS), None]


def clip_grid(live_label: str) -> ClipGrid:
    """The output side of a generation tab. The live player needs ffmpeg (Gradio encodes the stream
    with it); without it the clips show when they are done, with a note saying so."""
    live = None
    if shutil.which("ffmpeg"):
        live = gr.Audio(label=live_label, streaming=True, autoplay=True, interactive=False, elem_id=None)
    else:
        gr.Markdown("Install ffmpeg to hear the first clip while it is generated; the clips show when done.")
    status = gr.Markdown("")
    audios, pictures = [], []
    for row in range(MAX_CLIPS // SLOTS_PER_ROW):
        with gr.Row(equal_height=True):
            for i in range(row * SLOTS_PER_ROW, (row + 1) * SLOTS_PER_ROW):
                with gr.Column(min_width=200):
                    audios.append(gr.Audio(label=f"clip {i + 1}", type="filepath", interactive=False,
                                           visible=i == 0, elem_classes=["semantilm-clip"]))
                    pictures.append(gr.Image(label="spectrogram", type="filepath", interactive=False,
                                             visible=i == 0, show_label=False))
    downloads = gr.File(label="downloads: wav and token files", file_count="multiple", interactive=False)
    return ClipGrid(live, status, audios, pictures, downloads)
