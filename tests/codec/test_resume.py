"""An interrupted ``compress`` / ``decompress`` continues when the same call runs again: the files it finished
are kept (not written again), the rest is done, and the result equals an uninterrupted run. Outputs of any
other run (another input, codec or settings, or an input changed since) are refused, not kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from codec import DecodeSettings, SemantiCodec
from codec.compress import compress, decompress
from plumbing.io import OutputExistsError
from tests.interrupts import five_tones, interrupt_call, same_audio, snapshot, tone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = DecodeSettings(sampler="ddim", steps=2)  # stochastic: every file takes fresh noise


@pytest.fixture(scope="module")
def model() -> SemantiCodec:
    """The embedded tiny codec: short decoder windows keep the decodes quick."""
    return SemantiCodec.from_pretrained("tiny")


@pytest.fixture
def sources(tmp_path) -> Path:
    return five_tones(tmp_path / "src")


@pytest.fixture
def interrupt_after(monkeypatch):
    return lambda module, name, n: interrupt_call(monkeypatch, module, name, n)


def test_decode_interrupted_with_a_seed_continues_to_the_uninterrupted_result(sources, tmp_path, interrupt_after, model):
    import codec.compress as compress_module

    tokens = tmp_path / "tok"
    compress(model, sources, tokens)
    whole = decompress(model, tokens, tmp_path / "whole", SETTINGS, batch_size=2,
                       generator=torch.Generator().manual_seed(7))
    out = tmp_path / "wav"
    interrupt_after(compress_module, "_write_wav", 3)  # in the second batch of two
    with pytest.raises(KeyboardInterrupt):
        decompress(model, tokens, out, SETTINGS, batch_size=2, generator=torch.Generator().manual_seed(7))
    finished = snapshot(out)
    assert sorted(finished) == ["clip0.wav", "clip1.wav", "clip2.wav"]
    written = decompress(model, tokens, out, SETTINGS, batch_size=2, generator=torch.Generator().manual_seed(7))
    assert written == [out / "clip3.wav", out / "clip4.wav"]
    assert {k: v for k, v in snapshot(out).items() if k in finished} == finished
    for path in whole:
        assert same_audio(out / path.name, path), path.name


@pytest.mark.parametrize("kept_first", [1, 3])
def test_decode_resumed_with_a_seed_equals_an_uninterrupted_run(sources, tmp_path, kept_first, model):
    """Files kept from the earlier run, even between files still to do, do not shift the noise of the others."""
    tokens = tmp_path / "tok"
    compress(model, sources, tokens)
    whole = decompress(model, tokens, tmp_path / "whole", SETTINGS, batch_size=2,
                       generator=torch.Generator().manual_seed(7))
    out = tmp_path / "wav"
    out.mkdir()
    for path in whole[:kept_first] + whole[-1:]:  # as an earlier run of the same call left them
        (out / path.name).write_bytes(path.read_bytes())
    finished = snapshot(out)
    written = decompress(model, tokens, out, SETTINGS, batch_size=2, generator=torch.Generator().manual_seed(7))
    assert [p.name for p in written] == [p.name for p in whole[kept_first:-1]]
    assert {k: v for k, v in snapshot(out).items() if k in finished} == finished
    for path in whole:
        assert same_audio(out / path.name, path), path.name


def test_outputs_of_another_run_are_refused_not_kept(sources, tmp_path, model):
    out = tmp_path / "tok"
    compress(model, sources, out)
    before = snapshot(out)
    with pytest.raises(OutputExistsError, match="5 of the 5 .*clip0.tokens.npz.*tokens of codec 'tiny', not 'tiny-r50'"):
        compress(SemantiCodec.tiny_random(50), sources, out)
    clip = sources / "clip2.wav"
    tone(clip, 880, seconds=0.5)  # the same name, other audio of the same length, written later
    os.utime(clip, ns=(clip.stat().st_atime_ns, out.joinpath("clip2.tokens.npz").stat().st_mtime_ns + 10**9))
    with pytest.raises(OutputExistsError, match="1 of the 5 .*clip2.tokens.npz.*changed after it was encoded"):
        compress(model, sources, out)
    tone(clip, 880, seconds=0.9)
    with pytest.raises(OutputExistsError, match="clip2.tokens.npz.*another length"):
        compress(model, sources, out)
    other = tone(tmp_path / "other" / "clip0.wav", 220, seconds=0.3)
    with pytest.raises(OutputExistsError, match="clip0.tokens.npz.*was encoded from .*src/clip0.wav"):
        compress(model, other, out)
    assert snapshot(out) == before  # nothing replaced
    assert len(compress(model, sources, out, overwrite=True)) == 5

    stereo = tone(tmp_path / "st" / "s.wav", 300, channels=2)
    compress(model, stereo, tmp_path / "st_tok")
    with pytest.raises(OutputExistsError, match="mixed with mono='first', this run uses mono='mean'"):
        compress(model, stereo, tmp_path / "st_tok", mono="mean")
    assert compress(model, stereo, tmp_path / "st_tok") == []

    wavs = tmp_path / "wav"
    decompress(model, out, wavs, SETTINGS, generator=torch.Generator().manual_seed(1))
    for settings, seed, why in ((DecodeSettings(sampler="ddim", steps=3), 1, "steps=2 .this run: 3."),
                                (DecodeSettings(sampler="euler", steps=2), 1, "sampler='ddim' .this run: 'euler'."),
                                (SETTINGS, 2, "seed=1 .this run: 2.")):
        with pytest.raises(OutputExistsError, match=why):
            decompress(model, out, wavs, settings, generator=torch.Generator().manual_seed(seed))
    (wavs / "clip0.wav").write_bytes(b"not a wav")
    with pytest.raises(OutputExistsError, match="clip0.wav.*not a wav written by semantilm decode"):
        decompress(model, out, wavs, SETTINGS, generator=torch.Generator().manual_seed(1))
