"""Bad files and interrupted writes on the codec side: every one gets a clear error, none leaves a half file."""

import io
import pickle

import numpy as np
import pytest
import torch

from codec.config import SemantiCodecConfig
from codec.token_file import TokenFile, load_tokens, save_tokens


def record():
    return TokenFile(torch.arange(20).reshape(10, 2), "tiny-r100", 100, 64, 64, 3200, 16000, "x.wav")


def test_truncated_wrong_format_and_pickled_token_files(tmp_path):
    good = save_tokens(tmp_path / "good.tokens.npz", record())
    cut = tmp_path / "cut.tokens.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable token file"):
        load_tokens(cut)
    wav = tmp_path / "sound.tokens.npz"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    with pytest.raises(ValueError, match="not a readable token file"):
        load_tokens(wav)
    pickled = tmp_path / "pickled.tokens.npz"  # an object array: loading it would run pickle
    buffer = io.BytesIO()
    np.savez(buffer, tokens=np.array([{"code": 1}], dtype=object), meta=np.array("{}"))
    pickled.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="not a readable token file"):
        load_tokens(pickled)
    foreign = tmp_path / "foreign.tokens.npz"
    np.savez(foreign, tokens=np.zeros((2, 2), np.int32), meta=np.array('{"format": "other"}'))
    with pytest.raises(ValueError, match="is not a semantilm-tokens file"):
        load_tokens(foreign)


def test_interrupted_token_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = save_tokens(tmp_path / "a.tokens.npz", record())
    before = path.read_bytes()

    def crash(handle, **arrays):
        handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_tokens(path, record())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.tokens.npz"]


def test_damaged_config_files(tmp_path):
    path = tmp_path / "config.json"
    SemantiCodecConfig.tiny().to_json_file(path)
    assert SemantiCodecConfig.from_json_file(path) == SemantiCodecConfig.tiny()
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    path.write_text(path.read_text()[:40])
    with pytest.raises(ValueError, match="codec config .* is not valid JSON.*save the codec again"):
        SemantiCodecConfig.from_json_file(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a list"):
        SemantiCodecConfig.from_json_file(path)
    path.write_bytes(pickle.dumps({"token_rate": 100}))
    with pytest.raises(ValueError, match="not valid JSON"):
        SemantiCodecConfig.from_json_file(path)


@pytest.mark.parametrize(
    ("audio", "error", "match"),
    [
        (torch.zeros(0), ValueError, "0 samples"),
        (torch.zeros(100), ValueError, "at least 400"),
        (torch.full((1600,), float("inf")), ValueError, "NaN or Inf"),
        (torch.zeros(1600, dtype=torch.int16), TypeError, "floating-point"),
        (torch.zeros(2, 3, 1600), ValueError, "got shape"),
        ("song.wav", TypeError, "got str"),
    ],
)
def test_bad_audio_for_encode(audio, error, match, one_torch_thread):
    from codec import SemantiCodec

    model = SemantiCodec(SemantiCodecConfig.tiny())
    with pytest.raises(error, match=match):
        model.encode(audio)
