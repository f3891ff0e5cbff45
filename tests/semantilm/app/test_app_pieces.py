"""The app's pieces without a server: input checks, messages, the backend on a tiny LM, the CLI's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.semantilm.app.conftest import need_module

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _gradio(one_torch_thread):
    need_module("gradio")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, sp_model_path):
    """A tiny random LM saved for the tiny codec, with its codec reference (as training writes it)."""
    import sentencepiece as spm

    from semantilm.codec_api import load_codec
    from semantilm.models.hub import CodecReference, save_codec_reference
    from semantilm.models.lm import LMConfig, build_lm, save_lm
    from semantilm.tokens.layout import AudioTokenLayout
    from semantilm.tokens.tokenizer import AudioTextTokenizer

    codec = load_codec("tiny")
    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size())
    config = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=128)
    folder = save_lm(build_lm(layout, config, seed=0), layout, tmp_path_factory.mktemp("app") / "lm",
                     AudioTextTokenizer(sp, layout))
    save_codec_reference(folder, CodecReference("tiny", None, None, str(codec.variant)))
    return folder


@pytest.fixture(scope="module")
def backend(checkpoint):
    from semantilm.app.backend import Backend

    return Backend({"tiny-lm": checkpoint})


def test_captions_and_settings_are_checked_with_messages_naming_the_input():
    from semantilm.app.backend import AppInputError, GenerationSettings
    from semantilm.app.runs import check_clip_count, parse_captions
    from semantilm.app.widgets import read_settings

    assert parse_captions(" a tone \n\n  another\n") == ["a tone", "another"]
    with pytest.raises(AppInputError, match="caption: the caption is empty"):
        parse_captions("  \n ")
    with pytest.raises(AppInputError, match="at most 4 per run"):
        parse_captions("a\nb\nc\nd\ne")
    with pytest.raises(AppInputError, match="takes: 3 prompt"):
        check_clip_count(3, GenerationSettings(takes=3))
    good = ["lm", 1.0, 2.0, 1.0, 2, "ddim", 5, 0, 2]
    name, settings = read_settings(good, guidance=True)
    assert name == "lm" and settings == GenerationSettings(1.0, 2.0, 1.0, 2, "ddim", 5, 0, 2)
    for i, value, words in [(1, None, "seconds: no value given"), (6, 0, "steps: 0 is out of range"),
                            (8, 9, "takes: 9 is out of range"), (4, 1, "top-k 1 draws only the likeliest id")]:
        values = list(good)
        values[i] = value
        with pytest.raises(AppInputError, match=words):
            read_settings(values, guidance=True)
    assert read_settings([v for i, v in enumerate(good) if i != 2], guidance=False)[1].guidance == 1.0


def test_page_errors_show_a_message_and_never_a_trace():
    import gradio as gr

    from semantilm.app.widgets import page_errors

    @page_errors
    def bad_input(x):
        raise ValueError(f"seconds: {x} is too long")

    @page_errors
    def broken():
        raise RuntimeError("disk on fire")

    @page_errors
    def streaming():
        yield 1
        raise ValueError("the stream stopped")

    with pytest.raises(gr.Error, match="seconds: 9 is too long"):
        bad_input(9)
    with pytest.raises(gr.Error, match="broken failed: RuntimeError: disk on fire"):
        broken()
    stream = streaming()
    assert next(stream) == 1
    with pytest.raises(gr.Error, match="the stream stopped"):
        next(stream)


def test_a_file_that_is_not_audio_is_named(tmp_path):
    from semantilm.app.backend import AppInputError, read_audio

    path = tmp_path / "notes.wav"
    path.write_text("just text")
    with pytest.raises(AppInputError, match="audio prompt: the file 'notes.wav' is not audio this app can read"):
        read_audio(path, "audio prompt")


def test_backend_generates_writes_and_decodes_clips(backend, tmp_path):
    from semantilm.app.backend import AppInputError, GenerationSettings
    from semantilm.app.runs import Finished, run_stream

    settings = GenerationSettings(seconds=0.5, steps=2, takes=2, top_k=0)
    stream = backend.text_stream("tiny-lm", ["a tone"], settings)
    events = list(run_stream(backend, stream, ["a", "b"], tmp_path, "test"))
    done = events[-1]
    assert isinstance(done, Finished) and len(done.clips) == 2 and "done: 2 clip(s)" in done.status
    for clip in done.clips:
        wave, rate = sf.read(clip.wav)
        assert rate == 16000 and len(wave) <= 13 * 640  # whole frames (25 per second) that cover 0.5 s
        tokens = backend.load_token_file(clip.tokens)
        assert tokens.shape[1] == 2 and len(wave) == tokens.shape[0] * 640
        assert clip.picture.read_bytes()[:4] == b"\x89PNG"
        decoded = backend.decode(tokens, "dpmsolver++", 2, 0)
        assert decoded.shape == (len(wave),)
    most = backend.max_seconds("tiny-lm", "a tone")
    assert 0 < most < 3  # 128 ids of context
    with pytest.raises(AppInputError, match="beyond this model's context; it can write at most"):
        backend.text_stream("tiny-lm", ["a tone"], GenerationSettings(seconds=most + 1))
    with pytest.raises(AppInputError, match="is not one this app was started with"):
        backend.model("elsewhere")


def test_continuation_clips_hold_the_prompt_then_the_new_part(backend, tmp_path):
    from semantilm.app.backend import GenerationSettings, read_audio
    from semantilm.app.runs import run_stream

    wave, rate = read_audio(ROOT / "examples" / "audio" / "tone_440hz_16k.wav")
    stream = backend.continuation_stream("tiny-lm", wave[: rate // 2], rate, GenerationSettings(seconds=0.4, steps=2))
    done = list(run_stream(backend, stream, ["c"], tmp_path, "test"))[-1]
    whole, _ = sf.read(done.clips[0].wav)
    tokens = backend.load_token_file(done.clips[0].tokens)  # prompt frames first, then the new ones
    prompt_frames = (rate // 2) // 640  # the tiny codec: 640 samples a frame
    assert tokens.shape[0] > prompt_frames
    assert tokens.shape[0] * 640 - 640 < len(whole) <= tokens.shape[0] * 640  # the wav holds every frame


def test_stopping_a_run_closes_its_stream(backend, tmp_path):
    """Stop cancels the page's generator; closing it must close the stream, which stops the LM thread."""
    from semantilm.app.runs import Progress, run_stream

    class Stream:
        closed = False

        def __iter__(self):
            from semantilm.generation.stream import AudioChunk

            for k in range(1000):
                yield AudioChunk(0, torch.full((160,), 0.1), 16000, 160 * k, False)

        def close(self):
            Stream.closed = True

    run = run_stream(backend, Stream(), ["c"], tmp_path, "test")
    first = next(run)
    assert isinstance(first, Progress) and first.wav_bytes[:4] == b"RIFF"
    run.close()
    assert Stream.closed and not list(tmp_path.iterdir())  # nothing written for a stopped run


def test_stop_buttons_cancel_the_generation_events(backend, tmp_path):
    from semantilm.app.ui import build_app

    deps = build_app(backend, tmp_path).config["dependencies"]
    ids = {d["api_name"]: d["id"] for d in deps}
    cancelled = [c for d in deps for c in d.get("cancels") or []]
    assert ids["page_text_to_audio"] in cancelled and ids["page_continuation"] in cancelled


def test_codec_tab_encodes_decodes_and_scores(backend, tmp_path):
    from semantilm.app.backend import AppInputError
    from semantilm.app.codec_tab import decode_file, encode_file

    encoded = encode_file(backend, tmp_path, str(ROOT / "examples" / "audio" / "tone_440hz_16k.wav"))
    assert "bits/s" in encoded.about and encoded.picture.read_bytes()[:4] == b"\x89PNG"
    out, scores = decode_file(backend, tmp_path, str(encoded.tokens), "dpmsolver++", 2, 0, str(encoded.reference))
    assert sf.info(out).samplerate == 16000 and scores["dominant frequency of the input, Hz"] == pytest.approx(440, abs=2)
    _, no_scores = decode_file(backend, tmp_path, str(encoded.tokens), "ddim", 2, 0)
    assert no_scores is None
    with pytest.raises(AppInputError, match="sampler / steps"):
        decode_file(backend, tmp_path, str(encoded.tokens), "nonsense", 2, 0)
    bad = tmp_path / "bad.tokens.npz"
    np.savez(bad, tokens=np.zeros((3, 3)))
    with pytest.raises(AppInputError, match="token file 'bad.tokens.npz' cannot be read"):
        decode_file(backend, tmp_path, str(bad), "ddim", 2, 0)


def test_app_offers_the_generate_and_roundtrip_api(backend, tmp_path):
    from semantilm.app.ui import build_app

    app = build_app(backend, tmp_path)
    public = {d["api_name"] for d in app.config["dependencies"] if d.get("api_visibility") == "public"}
    assert public == {"generate", "roundtrip"}


def test_cli_refuses_a_folder_that_is_not_a_checkpoint(tmp_path, capsys, monkeypatch):
    from semantilm.cli.main import main

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert main(["app", "--checkpoint", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert "is not a complete LM checkpoint" in err and "Traceback" not in err
    assert main(["app", "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["app"]) == 2
    assert "run `semantilm demo` first" in capsys.readouterr().err


def test_docs_show_a_screenshot_of_each_tab():
    doc = (ROOT / "docs" / "app.md").read_text()
    for name in ("text_to_audio", "continuation", "codec"):
        picture = ROOT / "docs" / "app" / f"{name}.png"
        assert f"app/{name}.png" in doc and picture.read_bytes()[:4] == b"\x89PNG"
        assert picture.stat().st_size < 300_000
    assert "docs/app/text_to_audio.png" in (ROOT / "README.md").read_text()


def test_only_the_backend_calls_into_the_library():
    """The library's signatures may change (settings objects): the app adapts in backend.py alone."""
    import ast

    outside = []
    for path in sorted((ROOT / "semantilm" / "app").glob("*.py")):
        if path.name == "backend.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            outside += [f"{path.name}: {n}" for n in names
                        if (n == "codec" or n.startswith(("codec.", "semantilm."))) and not n.startswith("semantilm.app")]
    assert not outside, outside
