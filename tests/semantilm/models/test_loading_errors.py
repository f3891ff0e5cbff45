"""Loading an LM checkpoint that is missing, mistyped or damaged: each error names the input and the
problem (and what to do), a path never becomes a hub lookup, and the CLI exits 2 before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantilm.models.hub import check_weight_files, checkpoint_summary, resolve_checkpoint
from semantilm.models.lm import LMConfig, build_lm, load_lm, save_lm
from semantilm.tokens.layout import AudioTokenLayout


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    layout = AudioTokenLayout(text_vocab_size=8, semantic_vocab_size=4, acoustic_vocab_size=4, frame_rate=50.0)
    return save_lm(build_lm(layout, LMConfig(hidden_size=8, num_attention_heads=2), seed=0), layout,
                   tmp_path_factory.mktemp("lm") / "runs" / "t2a")


@pytest.fixture
def no_hub(monkeypatch):
    """Fails the test if anything asks the hub for a snapshot."""
    import huggingface_hub

    def refuse(repo_id, **kwargs):
        raise AssertionError(f"{repo_id!r} went to the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def damaged_copy(saved: Path, tmp_path: Path, content: bytes | None) -> Path:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2] if content is None else content)
    return folder


@pytest.mark.parametrize("content", [None, b"", b"junk" * 10, b"\x08\x00\x00\x00\x00\x00\x00\x00{}"],
                         ids=["truncated", "empty", "junk", "short-header"])
def test_a_damaged_weights_file_is_named_with_what_to_do(saved, tmp_path, content):
    folder = damaged_copy(saved, tmp_path, content)
    with pytest.raises(ValueError) as err:
        load_lm(folder)
    message = str(err.value)
    assert repr(str(folder / "model.safetensors")) in message and "is damaged" in message
    assert "Download the checkpoint again, or re-save it with semantilm.save_lm" in message


def test_a_folder_without_weights_says_so(saved, tmp_path):
    folder = damaged_copy(saved, tmp_path, b"")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"'.*copy' holds no model weights .*model\.safetensors"):
        load_lm(folder)
    assert check_weight_files(saved) == [saved / "model.safetensors"]


@pytest.mark.parametrize("name", ["missing_abs", "./runs/t2b", "../nowhere/lm", "a/b/c", "lm", "runs\\t2a"])
def test_a_missing_folder_is_reported_missing_and_never_looked_up(name, saved, tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    given = str(tmp_path / "no_such_run") if name == "missing_abs" else name
    with pytest.raises(FileNotFoundError) as err:
        load_lm(given)
    message = str(err.value)
    assert f"LM checkpoint {given!r} does not exist" in message and "semantilm_config.json" not in message


def test_a_partly_existing_path_is_local_and_suggests_close_names(saved, monkeypatch, no_hub):
    """``runs/t2b`` where ``runs/`` exists is a mistyped path (not the hub repo runs/t2b)."""
    monkeypatch.chdir(saved.parents[1])
    with pytest.raises(FileNotFoundError, match=r"'runs/t2b' does not exist .*Did you mean 'runs/t2a'\?"):
        load_lm("runs/t2b")
    assert resolve_checkpoint("runs/t2a") == Path("runs/t2a")
    with pytest.raises(FileNotFoundError, match=r"LM checkpoint 'runs/t2a/config.json' is a file, not a checkpoint folder"):
        resolve_checkpoint("runs/t2a/config.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(Path("owner/name"))  # a Path is always local


def test_a_hub_id_is_looked_up_and_its_failures_explained(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import RepositoryNotFoundError

    monkeypatch.chdir(tmp_path)
    asked = []

    class NotFound(RepositoryNotFoundError):
        def __init__(self):
            Exception.__init__(self, "404 Client Error: Repository Not Found")

    def missing(repo_id, **kwargs):
        asked.append(repo_id)
        raise NotFound()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    with pytest.raises(FileNotFoundError, match=r"'me/lm' is not a local folder, and the hub has no such repository"):
        resolve_checkpoint("me/lm")

    def offline(repo_id, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(OSError, match=r"'me/lm' is not a local folder, and it could not be fetched .*no network"):
        resolve_checkpoint("me/lm")
    assert asked == ["me/lm"]


def test_info_reports_a_missing_checkpoint_with_exit_2(tmp_path, monkeypatch, capsys, no_hub):
    from semantilm.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["info", "--checkpoint", "./outputs/t2a"]) == 2
    assert "LM checkpoint './outputs/t2a' does not exist" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint_summary(tmp_path / "none")


# ----- codecs through semantilm: refused before work, found from the token files ---------------
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "audio" / "tone_440hz_16k.wav"


def test_load_codec_refuses_an_encode_only_folder_when_it_must_decode(tmp_path):
    from codec import SemantiCodec
    from semantilm.codec_api import load_codec

    folder = tmp_path / "enc"
    SemantiCodec.tiny_random(100, with_decoder=False).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"codec '.*enc' cannot decode: '.*enc' was saved from an encode-only codec"):
        load_codec(str(folder), decoder=True)
    assert load_codec(str(folder), decoder=False).variant == "tiny-r100"  # it still loads to encode


def test_decode_without_codec_uses_the_codec_the_token_files_name(tmp_path, capsys, monkeypatch, no_hub):
    import semantilm.codec_api
    from codec.token_file import TokenFile, load_tokens, save_tokens
    from semantilm.cli.main import main

    tokens = tmp_path / "tiny_tokens"
    assert main(["encode", str(EXAMPLE), "--codec", "tiny", "--out", str(tokens)]) == 0
    wavs = tmp_path / "wav"
    assert main(["decode", str(tokens), "--out", str(wavs), "--steps", "1", "--sampler", "dpmsolver++"]) == 0
    assert "(tiny, 16000 Hz)" in capsys.readouterr().out and len(list(wavs.rglob("*.wav"))) == 1
    # tokens of tiny-random cannot be found by their variant name: exit 2, asking for --codec
    assert main(["encode", str(EXAMPLE), "--codec", "tiny-random", "--out", str(tmp_path / "rnd")]) == 0
    assert main(["decode", str(tmp_path / "rnd"), "--out", str(tmp_path / "rnd_wav")]) == 2
    err = capsys.readouterr().err
    assert "holds tokens of codec 'tiny-r100', which cannot be found by its name" in err and "--codec" in err
    assert not (tmp_path / "rnd_wav").exists()
    # an official variant's tokens load that variant (stubbed: nothing is downloaded)
    record = load_tokens(next(tokens.rglob("*.tokens.npz")))
    official = tmp_path / "official"
    save_tokens(official / "x.tokens.npz", TokenFile(record.tokens, "official-r50-v8192", record.token_rate, 8192, 8192,
                                                           record.num_samples, record.source_sample_rate))
    asked = []

    def stub(name, token_rate, vocab, *args, **kwargs):
        asked.append((name, token_rate, vocab))
        raise ValueError("stubbed")

    monkeypatch.setattr(semantilm.codec_api, "load_codec", stub)
    assert main(["decode", str(official), "--out", str(tmp_path / "o")]) == 1
    assert asked == [("haoheliu/SemantiCodec", 50, 8192)]
