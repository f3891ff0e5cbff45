"""codec.compress: audio files <-> token files in batches, with mirrored, collision-free names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec import DecodeSettings, SemantiCodec
from codec.compress import VariantMismatchError, compress, decompress, output_paths
from codec.token_file import load_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = DecodeSettings(sampler="dpmsolver++", steps=2)


@pytest.fixture(scope="module")
def codec50():
    return SemantiCodec.from_pretrained("tiny-random", token_rate=50)


def write_clip(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and (p.name.startswith(".") or "tmp" in p.name))


def test_round_trip_mirrors_folders_and_keeps_lengths(codec50, tmp_path):
    src = tmp_path / "src"
    write_clip(src / "a" / "x.wav")
    write_clip(src / "y.flac", seconds=0.4, rate=22050, channels=2)
    tokens = compress(codec50, [src], tmp_path / "tok", batch_size=1)
    assert tokens == [tmp_path / "tok" / "a" / "x.tokens.npz", tmp_path / "tok" / "y.tokens.npz"]
    x, y = (load_tokens(p) for p in tokens)
    assert x.codec_variant == codec50.variant and x.token_rate == 50 and x.num_samples == 8000
    assert x.source_sample_rate == 16000 and x.tokens.shape[1] == 2 and x.tokens.shape[0] > 0
    assert y.source_sample_rate == 22050 and y.num_samples == 6400 and y.source == str(src / "y.flac")

    wavs = decompress(codec50, [tmp_path / "tok"], tmp_path / "wav", FAST, batch_size=2)
    assert wavs == [tmp_path / "wav" / "a" / "x.wav", tmp_path / "wav" / "y.wav"]
    for path, expected in zip(wavs, (8000, 6400)):
        info = sf.info(path)
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, expected, 1, "PCM_16")
    assert leftovers(tmp_path) == []


def test_a_file_given_directly_is_named_after_its_own_folder(codec50, tmp_path):
    clip = write_clip(tmp_path / "deep" / "down" / "x.flac")
    assert compress(codec50, [clip], tmp_path / "out") == [tmp_path / "out" / "x.tokens.npz"]
    assert compress(codec50, [clip], tmp_path / "rooted", root=tmp_path) == [
        tmp_path / "rooted" / "deep" / "down" / "x.tokens.npz"
    ]


def test_colliding_names_keep_their_suffix():
    out = Path("out")
    pairs = [(Path("d/x.wav"), Path("d")), (Path("d/x.flac"), Path("d")), (Path("d/s/z.wav"), Path("d"))]
    assert output_paths(pairs, out, ".tokens.npz") == [
        out / "x.wav.tokens.npz", out / "x.flac.tokens.npz", out / "s" / "z.tokens.npz"
    ]
    assert output_paths([(Path("t/x.tokens.npz"), Path("t"))], out, ".wav") == [out / "x.wav"]
    assert output_paths([(Path("t/x.wav.tokens.npz"), Path("t"))], out, ".wav") == [out / "x.wav.wav"]
    with pytest.raises(ValueError, match="would both be written to"):
        output_paths([(Path("a/x.wav"), Path("a")), (Path("b/x.wav"), Path("b"))], out, ".tokens.npz")
    with pytest.raises(ValueError, match="is not under root"):
        output_paths([(Path("a/x.wav"), Path("b"))], out, ".tokens.npz")


def test_unresolvable_collision_writes_nothing(codec50, tmp_path):
    a, b = write_clip(tmp_path / "a" / "x.wav"), write_clip(tmp_path / "b" / "x.wav")
    with pytest.raises(ValueError, match="would both be written to"):
        compress(codec50, [a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_variant_names_the_file_and_both_codecs(codec50, tmp_path):
    token_file = compress(codec50, [write_clip(tmp_path / "x.wav")], tmp_path / "tok")[0]
    codec100 = SemantiCodec.from_pretrained("tiny-random", token_rate=100)
    with pytest.raises(VariantMismatchError) as info:
        decompress(codec100, [token_file], tmp_path / "wav", FAST)
    message = str(info.value)
    assert str(token_file) in message and codec50.variant in message and codec100.variant in message
    assert isinstance(info.value, ValueError) and not (tmp_path / "wav").exists()


def test_a_failure_leaves_complete_files_only(codec50, tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_clip(src / "a.wav")
    (src / "b.wav").write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="could not read audio file .*b.wav"):
        compress(codec50, [src], tmp_path / "tok", batch_size=1)
    assert not (tmp_path / "tok").exists()  # an unreadable header is found before anything is written
    sf.write(src / "b.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")  # only reading finds it
    with pytest.raises(ValueError, match="audio file .*b.wav.* NaN or Inf"):
        compress(codec50, [src], tmp_path / "tok", batch_size=1)
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["a.tokens.npz"]
    load_tokens(tmp_path / "tok" / "a.tokens.npz")

    def broken_write(self, data):  # the wav file is open (its header written) when the disk fills up
        raise OSError("disk full")

    monkeypatch.setattr(sf.SoundFile, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        decompress(codec50, [tmp_path / "tok"], tmp_path / "wav", FAST)
    assert list((tmp_path / "wav").rglob("*")) == []


def test_missing_and_empty_inputs(codec50, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        compress(codec50, [tmp_path / "none.wav"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no token files"):
        decompress(codec50, [tmp_path / "empty"], tmp_path / "out", FAST)
