"""``semantilm tokenize``: every input that looks like audio ends as a token row or a line of
failures.jsonl, and the summary line says rows + failures = audio inputs (folders, metadata files,
.tar shards)."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.semantilm.data.clips import RATE, clip

CODEC = ["--codec", "tiny-random", "--token-rate", "50"]


def tokenize(*args: str) -> int:
    from semantilm.cli.main import main

    return main(["tokenize", *args, *CODEC, "--num-workers", "0", "--no-progress"])


def wav_bytes(wave: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def failures(out: Path) -> dict[str, dict]:
    return {f["id"]: f for f in map(json.loads, (out / "failures.jsonl").read_text().splitlines())}


def counts(text: str) -> tuple[int, int, int]:
    found = re.search(r"wrote (\d+) token rows, (\d+) failures \(see [^)]*failures.jsonl\), (\d+) audio inputs", text)
    assert found, text
    return tuple(int(n) for n in found.groups())


def write_metadata(folder: Path, kind: str, rows: list[dict]) -> None:
    if kind == "csv":
        lines = ["file_name,caption"] + [f"{r['file_name']},{r['caption']}" for r in rows]
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    else:
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_folder_accounts_for_every_file(tmp_path, capsys, kind):
    """Files the reader cannot open (.m4a, a broken .mp3, .opus bytes that are not audio) and files a
    metadata file lists but that are missing are failure lines naming them; a file left out of the
    metadata is a row, and the summary counts it."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"good{i}.wav", clip(i), RATE, subtype="PCM_16")
    (folder / "talk.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    (folder / "song.mp3").write_bytes(b"ID3" + bytes(300))
    (folder / "voice.OPUS").write_bytes(b"not an ogg stream")
    listed = [{"file_name": f"good{i}.wav", "caption": f"good {i}"} for i in range(3)]  # good3.wav is left out
    listed += [{"file_name": "gone.wav", "caption": "deleted since"}, {"file_name": "talk.m4a", "caption": "talk"}]
    write_metadata(folder, kind, listed)
    out = tmp_path / "tokens"
    assert tokenize(str(folder), "--out", str(out)) == 0
    said = capsys.readouterr()
    assert counts(said.out) == (4, 4, 8)  # 4 wavs + m4a + mp3 + opus + the listed missing file
    assert "inputs in no metadata file: 3" in said.out
    assert "warning: 3 of the 8 audio files" in said.err and "in no metadata file (e.g. 'good3.wav'" in said.err
    records = failures(out)
    assert sorted(records) == ["gone.wav", "song.mp3", "talk.m4a", "voice.OPUS"]
    assert f"metadata.{kind}" in records["gone.wav"]["reason"] and "no such file" in records["gone.wav"]["reason"]
    for name in ("song.mp3", "talk.m4a", "voice.OPUS"):
        assert "soundfile" in records[name]["reason"] and "flac" in records[name]["reason"], records[name]
    manifest = json.loads((out / "semantilm_tokens.json").read_text())
    assert manifest["inputs"] == 8 and manifest["not_in_metadata"] == 3


def test_two_metadata_files_in_one_folder_are_refused(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "a.wav", clip(0), RATE)
    write_metadata(folder, "csv", [{"file_name": "a.wav", "caption": "from csv"}])
    write_metadata(folder, "jsonl", [{"file_name": "a.wav", "caption": "from jsonl"}])
    assert tokenize(str(folder), "--out", str(tmp_path / "t")) == 2
    err = capsys.readouterr().err
    assert "metadata.csv" in err and "metadata.jsonl" in err
    assert not (tmp_path / "t" / "train").exists()


def test_a_bom_csv_is_read_and_a_missing_file_name_lists_the_columns(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "a.wav", clip(0), RATE)
    (folder / "metadata.csv").write_bytes("file_name,caption\na.wav,with a BOM\n".encode("utf-8-sig"))
    out = tmp_path / "t"
    assert tokenize(str(folder), "--out", str(out)) == 0
    from semantilm.data.token_dataset import load_token_dataset

    assert load_token_dataset(out)[0]["caption"] == "with a BOM"
    (folder / "metadata.csv").write_text("path,caption\na.wav,no file_name\n")
    assert tokenize(str(folder), "--out", str(tmp_path / "t2")) == 2
    err = capsys.readouterr().err
    assert "no file_name column" in err and "['path', 'caption']" in err and "metadata.csv" in err


def add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def make_tar(path: Path) -> Path:
    """take: two audio members; good: audio + json; bad: audio + a .json that is not JSON; late: a json
    field no key before it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        add(tar, "take.1.wav", wav_bytes(clip(1)))
        add(tar, "take.2.wav", wav_bytes(clip(2)))
        add(tar, "good.wav", wav_bytes(clip(3)))
        add(tar, "good.json", b'{"speaker": "a"}')
        add(tar, "bad.wav", wav_bytes(clip(4)))
        add(tar, "bad.json", b'{"speaker": ')
        add(tar, "late.wav", wav_bytes(clip(5)))
        add(tar, "late.json", b'{"speaker": "b", "room": "hall"}')
    return path


def test_tar_members_each_count_and_bad_members_are_failures_naming_tar_and_member(tmp_path, capsys):
    from semantilm.data.token_dataset import load_token_dataset

    shards = tmp_path / "shards"
    make_tar(shards / "part-0.tar")
    out = tmp_path / "t"
    assert tokenize(str(shards), "--out", str(out)) == 0
    assert counts(capsys.readouterr().out) == (4, 1, 5)
    rows = {r["id"]: r for r in load_token_dataset(out)}
    assert sorted(rows) == ["good", "late", "take.1.wav", "take.2.wav"]
    assert rows["late"]["room"] == "hall" and rows["good"]["speaker"] == "a"  # a field first seen late is kept
    record = failures(out)["bad"]
    assert "part-0.tar" in record["reason"] and "bad.json" in record["reason"] and "JSON" in record["reason"]
    assert record["member"] == "bad.wav" and record["tar"].endswith("part-0.tar")

    assert tokenize(str(shards), "--out", str(tmp_path / "t2"), "--on-error", "stop") == 1
    err = capsys.readouterr().err
    assert "part-0.tar" in err and "bad.json" in err


def test_a_file_that_is_not_a_tar_is_a_failure_naming_it(tmp_path, capsys):
    shards = tmp_path / "shards"
    make_tar(shards / "part-0.tar")
    (shards / "part-1.tar").write_text("<html>not found</html>\n" * 40)
    out = tmp_path / "t"
    assert tokenize(str(shards), "--out", str(out)) == 0
    rows, failed, inputs = counts(capsys.readouterr().out)
    assert (rows, failed, inputs) == (4, 2, 6)
    assert "is not a tar archive" in failures(out)["part-1.tar"]["reason"]
    assert tokenize(str(shards / "part-1.tar"), "--out", str(tmp_path / "t2"), "--on-error", "stop") == 1
    err = capsys.readouterr().err
    assert "part-1.tar" in err and "not a tar archive" in err and "Traceback" not in err


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "a.wav", clip(0), RATE)
    (tmp_path / "taken").write_text("a file\n")
    assert tokenize(str(folder), "--out", str(tmp_path / "taken")) == 2
    err = capsys.readouterr().err
    assert "taken" in err and "is a file, not a folder" in err and "Errno" not in err


def test_an_empty_dataset_says_so(tmp_path):
    from datasets import Dataset

    from semantilm.codec_api import load_codec
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    codec = load_codec("tiny-random", 50, 16384, "cpu", None, decoder=False)
    settings = TokenizeSettings(num_workers=0, caption_column="caption")
    empty = Dataset.from_dict({"audio": [], "caption": []})
    with pytest.raises(ValueError, match="empty"):
        tokenize_corpus(empty, codec, tmp_path / "t", settings=settings, progress=False)
    stream = Dataset.from_dict({"audio": [clip(0).tolist()]}).to_iterable_dataset().filter(lambda row: False)
    with pytest.raises(ValueError, match="empty"):
        tokenize_corpus(stream, codec, tmp_path / "t2", settings=TokenizeSettings(num_workers=0, sample_rate=RATE),
                        progress=False)


def test_bare_sample_arrays_need_sample_rate(tmp_path, capsys):
    """A Parquet column of bare sample arrays has no rate: refused before any work, naming the column
    and --sample-rate; with it, every row is tokenised."""
    from datasets import Dataset

    data = tmp_path / "raw.parquet"
    Dataset.from_dict({"audio": [clip(i).tolist() for i in range(3)], "caption": ["a", "b", "c"]}).to_parquet(str(data))
    assert tokenize(str(data), "--out", str(tmp_path / "t")) == 2
    err = capsys.readouterr().err
    assert "column 'audio'" in err and "bare arrays of samples" in err and "--sample-rate" in err
    assert not (tmp_path / "t").exists()
    assert tokenize(str(data), "--out", str(tmp_path / "t"), "--sample-rate", str(RATE)) == 0
    assert counts(capsys.readouterr().out) == (3, 0, 3)
