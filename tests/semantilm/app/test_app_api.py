"""`semantilm app` through Gradio's API (gradio_client): /generate under load, /roundtrip, bad input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.semantilm.app.conftest import need_module

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "audio" / "tone_440hz_16k.wav"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    need_module("gradio_client")
    from gradio_client import Client

    return Client(app_url, verbose=False, download_files=str(tmp_path_factory.mktemp("client_downloads")))


def _check_wav(path: str, most_seconds: float) -> None:
    wave, rate = sf.read(path)
    assert rate == 16000 and wave.ndim == 1
    assert 0 < len(wave) <= most_seconds * rate
    assert np.sqrt(np.mean(wave**2)) > 1e-3


def test_eight_concurrent_generate_calls_all_get_their_audio(client):
    captions = [f"a steady sine tone at {hz} Hz" for hz in (300, 500)] * 4
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(client.predict, caption, 1.0, api_name="/generate") for caption in captions]
        paths = [job.result(timeout=300) for job in jobs]
    assert len(paths) == 8 and len(set(paths)) == 2  # every call answered; same caption and seed 0: the same clip
    for path in paths:
        _check_wav(path, 1.0)


def test_roundtrip_returns_the_decoded_clip_and_the_metrics(client):
    from gradio_client import handle_file

    decoded, scores = client.predict(handle_file(str(EXAMPLE)), api_name="/roundtrip")
    _check_wav(decoded, 2.1)  # the 2 s example in whole frames
    assert scores["dominant frequency of the input, Hz"] == pytest.approx(440, abs=2)
    assert {"mel distance (lower is better)", "SI-SDR dB (higher is better)"} <= set(scores)


@pytest.mark.parametrize("call, words", [
    (("", 1.0, "/generate"), "caption: the caption is empty"),
    (("a pure tone of 300 Hz", 500.0, "/generate"), "seconds: 500 s is beyond this model's context; it can write at most"),
    ((None, None, "/roundtrip"), "is not audio this app can read"),
])
def test_bad_input_gets_a_message_not_a_trace(client, tmp_path, call, words):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    caption, seconds, api = call
    if api == "/roundtrip":
        text = tmp_path / "notes.wav"
        text.write_text("not audio at all")
        args = (handle_file(str(text)),)
    else:
        args = (caption, seconds)
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name=api)
    assert words in str(err.value) and "Traceback" not in str(err.value)
