"""Loading a codec from a path that is missing, mistyped, incomplete or damaged, and what an
encode-only codec knows about itself after a save and reload; which codec token files name."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
import torch

from codec import SemantiCodec
from codec.checkpoints import OFFICIAL_REPO, codec_for_token_files, codec_for_variant
from codec.token_file import TokenFile, save_tokens


@pytest.fixture(scope="module")
def encode_only_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("codecs") / "encode_only"
    SemantiCodec.tiny_random(100, with_decoder=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def full_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("codecs") / "full"
    SemantiCodec.tiny_random(100).save_pretrained(folder)
    return folder


@pytest.fixture
def no_hub(monkeypatch):
    import huggingface_hub

    def refuse(repo_id, filename, **kwargs):
        raise AssertionError(f"{repo_id!r} went to the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


@pytest.mark.parametrize("lacking", ["config.json", "model.safetensors"])
def test_a_save_pretrained_folder_missing_a_file_is_described_as_one(full_folder, tmp_path, lacking, no_hub):
    folder = tmp_path / "codec"
    shutil.copytree(full_folder, folder)
    (folder / lacking).unlink()
    with pytest.raises(FileNotFoundError) as err:
        SemantiCodec.from_pretrained(folder)
    message = str(err.value)
    kept = "model.safetensors" if lacking == "config.json" else "config.json"
    assert f"codec folder {str(folder)!r} has {kept} but no {lacking}: save_pretrained writes both" in message
    assert "official" not in message and "mirror" not in message


@pytest.mark.parametrize("name", ["./no_such_codec", "outputs/run/codec", "runs/codec", "no_such\\codec"])
def test_a_missing_path_is_reported_missing_and_never_looked_up(name, tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # "runs/codec": the first part exists here, so it is a path
    with pytest.raises(FileNotFoundError, match=re.escape(f"codec {name!r} is not a folder: it does not exist")):
        SemantiCodec.from_pretrained(name, load_decoder=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SemantiCodec.from_pretrained(Path("owner") / "name")  # a Path is always local


def test_a_file_instead_of_a_folder(full_folder, no_hub):
    with pytest.raises(FileNotFoundError, match=r"model.safetensors' is a file; give the folder written by save_pretrained"):
        SemantiCodec.from_pretrained(full_folder / "model.safetensors")


def test_damaged_weights_name_the_file_and_say_what_to_do(full_folder, tmp_path):
    folder = tmp_path / "codec"
    shutil.copytree(full_folder, folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(ValueError, match=r"could not read '.*model.safetensors'.*truncated.*re-save the codec"):
        SemantiCodec.from_pretrained(folder)


def test_an_encode_only_codec_keeps_knowing_it_cannot_decode(encode_only_folder, tmp_path, caplog):
    tokens = torch.zeros(1, 4, 2, dtype=torch.long)
    with caplog.at_level(logging.WARNING, logger="codec.model"):
        loaded = SemantiCodec.from_pretrained(encode_only_folder)  # load_decoder=True by default
    assert "can encode but not decode" in caplog.text and str(encode_only_folder) in caplog.text
    assert loaded.decoder is None and "saved from an encode-only codec" in loaded.no_decoder_reason
    with pytest.raises(RuntimeError, match=rf"{encode_only_folder.name}' was saved from an encode-only codec"):
        loaded.decode(tokens)
    loaded.save_pretrained(tmp_path / "again")  # still encode-only after another round trip
    again = SemantiCodec.from_pretrained(tmp_path / "again", load_decoder=False)
    with pytest.raises(RuntimeError, match="again' was saved from an encode-only codec"):
        again.decode(tokens)
    assert loaded.encode(torch.zeros(1600)).tokens.shape[-1] == 2  # it still encodes


def test_a_full_codec_loaded_encode_only_says_how_to_get_the_decoder(full_folder):
    codec = SemantiCodec.from_pretrained(full_folder, load_decoder=False)
    assert "built encode-only" in codec.no_decoder_reason
    assert SemantiCodec.from_pretrained(full_folder).no_decoder_reason is None
    with pytest.raises(RuntimeError, match="load_decoder=True"):
        codec.decode(torch.zeros(1, 4, 2, dtype=torch.long))


def token_file(path: Path, variant: str, rate: int = 100) -> Path:
    return save_tokens(path, TokenFile(torch.zeros(3, 2, dtype=torch.long), variant, rate, 64, 64, 480, 16000))


def test_the_codec_a_token_file_names(tmp_path):
    assert codec_for_variant("official-r50-v8192") == (OFFICIAL_REPO, 50, 8192)
    assert codec_for_variant("tiny") == ("tiny", 50, None)  # the embedded codec: its own rate; no vocabulary to choose
    assert codec_for_variant("official-r75-v8192") is None and codec_for_variant("my-codec") is None
    files = [token_file(tmp_path / "a.tokens.npz", "official-r25-v4096", 25),
             token_file(tmp_path / "b.tokens.npz", "official-r25-v4096", 25)]
    assert codec_for_token_files(files) == (OFFICIAL_REPO, 25, 4096)
    mixed = [*files, token_file(tmp_path / "c.tokens.npz", "tiny")]
    with pytest.raises(ValueError, match=r"made by different codecs \(.*a.tokens.npz': 'official-r25-v4096', .*c.tokens.npz': 'tiny'\)"):
        codec_for_token_files(mixed)
    with pytest.raises(ValueError, match=r"d.tokens.npz' holds tokens of codec 'tiny-r100', which cannot be found .*--codec tiny-random"):
        codec_for_token_files([token_file(tmp_path / "d.tokens.npz", "tiny-r100")])
    with pytest.raises(ValueError, match=r"holds tokens of codec 'mine', which cannot be found by its name: name the codec"):
        codec_for_token_files([token_file(tmp_path / "e.tokens.npz", "mine")])
