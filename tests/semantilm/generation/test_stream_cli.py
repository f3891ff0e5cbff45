"""``semantilm generate``: wavs of ``generate_audio``; with ``--stream`` written while the LM writes,
equal to the run without it."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch

from codec import DecodeSettings
from semantilm.cli.main import main
from semantilm.cli.wav_stream import PartialWav
from semantilm.codec_api import load_codec
from semantilm.generation.generate import generate_audio
from semantilm.generation.settings import SamplingSettings
from semantilm.models import lm as lm_module
from semantilm.models.lm import LMConfig, build_lm, save_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=256)


@pytest.fixture(scope="module")
def codec():
    return load_codec("tiny", device="cpu")


@pytest.fixture
def checkpoint(tmp_path, sp_model_path, codec, monkeypatch):
    """A tiny LM saved for the tiny codec (1.28 s decoder windows); loading it adds a forward hook
    that keeps ``<|audio_end|>`` unlikely, so every clip runs to its frame limit (three windows)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size())
    path = save_lm(build_lm(layout, TINY, seed=0), layout, tmp_path / "lm", AudioTextTokenizer(sp, layout))
    load_lm = lm_module.load_lm

    def load_without_early_end(*args, **kwargs):
        loaded = load_lm(*args, **kwargs)

        def no_early_end(module, inputs, output):
            output.logits[..., layout.audio_end_id] -= 50.0
            return output

        loaded.model.register_forward_hook(no_early_end)
        return loaded

    monkeypatch.setattr(lm_module, "load_lm", load_without_early_end)
    return path


def _samples(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


BASE = ["generate", "--codec", "tiny", "--seconds", "3", "--steps", "2", "--seed", "0", "--text", "a tone", ""]


def test_the_wavs_hold_generate_audios_waveforms(checkpoint, codec, tmp_path, capsys):
    assert main([*BASE, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "whole")]) == 0
    out = capsys.readouterr().out
    assert "time to first audio" not in out and "wrote 2 wav + token files" in out
    assert not list((tmp_path / "whole").glob(".*"))  # no partial file is left
    # The same seeds through the Python API: the 16-bit samples of its waveforms.
    model = lm_module.load_lm(checkpoint)
    clips = generate_audio(model.model, model.tokenizer, codec, ["a tone", ""],
                           sampling=SamplingSettings(seconds=3.0, seed=0), decode=DecodeSettings(steps=2),
                           generator=torch.Generator().manual_seed(0))
    assert clips.token_lengths.tolist() == [75, 75]
    for i, name in enumerate(("text_00", "text_01")):
        expected = np.rint(clips.audio[i, : clips.lengths[i]].clamp(-1, 1).numpy() * 32767).astype("<i2")
        assert np.array_equal(_samples(tmp_path / "whole" / f"{name}.wav"), expected)
    assert main([*BASE, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x"), "--stream",
                 "--tokens-only"]) == 2
    assert "cannot be combined with --tokens-only" in capsys.readouterr().err


def test_stream_writes_the_wavs_of_the_run_without_it(checkpoint, tmp_path, capsys):
    base = [*BASE, "--checkpoint", str(checkpoint)]
    assert main([*base, "--out", str(tmp_path / "whole")]) == 0
    assert main([*base, "--out", str(tmp_path / "streamed"), "--stream"]) == 0
    out = capsys.readouterr().out
    assert "time to first audio of text_00.wav" in out and ".partial" in out and "wrote 2 wav + token files" in out
    assert not list((tmp_path / "streamed").glob(".*"))  # no partial file is left
    for name in ("text_00", "text_01"):
        tokens = (tmp_path / "streamed" / f"{name}.tokens.npz")
        assert tokens.read_bytes() == (tmp_path / "whole" / f"{name}.tokens.npz").read_bytes()
        streamed = (tmp_path / "streamed" / f"{name}.wav").read_bytes()
        assert streamed == (tmp_path / "whole" / f"{name}.wav").read_bytes()


def test_partial_wav_is_a_valid_wav_after_every_chunk(tmp_path):
    target = tmp_path / "clip.wav"
    writer = PartialWav(target, 16000)
    writer.write(torch.full((100,), 0.5))
    assert not target.exists() and writer.partial.parent == tmp_path and writer.partial.name.startswith(".clip.wav.")
    assert _samples(writer.partial).tolist() == [16384] * 100  # round-half-even of 0.5 * 32767
    writer.write(torch.tensor([2.0, -2.0, 0.0]))
    assert _samples(writer.partial)[100:].tolist() == [32767, -32767, 0]
    assert writer.finish() == target and not writer.partial.exists()
    assert len(_samples(target)) == 103
    other = PartialWav(tmp_path / "failed.wav", 16000)
    other.write(torch.zeros(10))
    other.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav"]
