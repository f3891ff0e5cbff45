"""An interrupted ``encode`` / ``decode`` continues when the same command runs again: the files it finished
are kept (not written again), the rest is done, and the result equals an uninterrupted run. Outputs of any
other run (another input, codec or settings, or an input changed since) are refused, not kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import DecodeSettings, SemantiCodec
from codec.compress import compress, decompress
from codec.io import OutputExistsError
from semantilm.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = DecodeSettings(sampler="ddim", steps=2)  # stochastic: every file takes fresh noise


def tone(path: Path, freq: float, seconds: float = 0.5, channels: int = 1) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave, -wave], 1) if channels == 2 else wave, 16000)
    return path


def same_audio(a: Path, b: Path) -> bool:
    """Equal 16-bit wavs up to one step: a batch of other clips moves the decoder's floats by ~1e-7."""
    x, y = sf.read(a, dtype="int16")[0], sf.read(b, dtype="int16")[0]
    return x.shape == y.shape and int(np.abs(x.astype(np.int32) - y).max()) <= 1


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def model() -> SemantiCodec:
    """The embedded tiny codec: short decoder windows keep the decodes quick."""
    return SemantiCodec.from_pretrained("tiny")


@pytest.fixture
def sources(tmp_path) -> Path:
    folder = tmp_path / "src"
    for i, freq in enumerate((220, 330, 440, 550, 660)):
        tone(folder / f"clip{i}.wav", freq, seconds=0.3 + 0.1 * i)
    return folder


@pytest.fixture
def interrupt_after(monkeypatch):
    """``interrupt_after(module, name, n)``: the function ``module.name`` raises KeyboardInterrupt (as Ctrl-C
    would) once, when it is called for the (n + 1)-th time, after n complete calls; later calls go through."""

    def arm(module, name: str, n: int) -> None:
        real = getattr(module, name)
        calls = []

        def wrapped(*args, **kwargs):
            calls.append(args)
            if len(calls) == n + 1:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    return arm


@pytest.fixture
def encoded_clips(monkeypatch):
    """The number of clips the codec encodes, over all calls."""
    clips = []
    real = SemantiCodec.encode

    def counting(self, audio, *args, **kwargs):
        clips.extend(audio)
        return real(self, audio, *args, **kwargs)

    monkeypatch.setattr(SemantiCodec, "encode", counting)
    return clips


def test_encode_interrupted_then_the_same_command_continues(sources, tmp_path, capsys, interrupt_after,
                                                            encoded_clips):
    import codec.token_file

    out = tmp_path / "tok"
    argv = ["encode", str(sources), "--codec", "tiny-random", "--batch-size", "1", "--out", str(out)]
    interrupt_after(codec.token_file, "save_tokens", 2)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "rerun the same command to continue" in err
    finished = snapshot(out)
    assert sorted(finished) == ["clip0.tokens.npz", "clip1.tokens.npz"]
    encoded_clips.clear()

    assert main(argv) == 0  # no --overwrite
    printed = capsys.readouterr().out
    assert "wrote 3 token files" in printed and "kept 2" in printed
    assert len(encoded_clips) == 3  # the finished files were not encoded again
    assert {k: v for k, v in snapshot(out).items() if k in finished} == finished  # nor written again

    whole = tmp_path / "whole"
    assert main([*argv[:-1], str(whole)]) == 0
    assert {k: v[0] for k, v in snapshot(out).items()} == {k: v[0] for k, v in snapshot(whole).items()}


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


def test_decode_interrupted_then_the_same_command_continues(sources, tmp_path, capsys, interrupt_after):
    import codec.compress as compress_module

    tokens = tmp_path / "tok"
    assert main(["encode", str(sources), "--codec", "tiny", "--out", str(tokens)]) == 0
    out = tmp_path / "wav"
    argv = ["decode", str(tokens), "--codec", "tiny", "--steps", "2", "--seed", "3", "--batch-size", "2",
            "--out", str(out)]
    interrupt_after(compress_module, "_write_wav", 2)
    assert main(argv) == 130
    assert "rerun the same command to continue" in capsys.readouterr().err
    finished = snapshot(out)
    assert len(finished) == 2
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 wav files" in printed and "kept 2" in printed
    assert {k: v for k, v in snapshot(out).items() if k in finished} == finished
    whole = tmp_path / "whole"
    assert main([*argv[:-1], str(whole)]) == 0
    assert sorted(snapshot(out)) == sorted(snapshot(whole))
    assert all(same_audio(out / name, whole / name) for name in snapshot(whole))


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
