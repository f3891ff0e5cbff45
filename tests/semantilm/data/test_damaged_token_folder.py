"""A token folder that lost a shard, or holds a cut-off or corrupt one, is not read as whole: loading
names the bad shards and says how to repair; ``semantilm tokenize`` run again encodes them again and
reports the true count."""

from __future__ import annotations

import re

import pytest
import soundfile as sf

from tests.semantilm.data.clips import RATE, clip

CODEC = ["--codec", "tiny-random", "--token-rate", "50"]


@pytest.fixture
def folder(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(10):
        sf.write(clips / f"c{i}.wav", clip(i), RATE, subtype="PCM_16")
    return clips


def tokenize(clips, out) -> int:
    from semantilm.cli.main import main

    return main(["tokenize", str(clips), *CODEC, "--out", str(out), "--shard-size", "4", "--num-workers", "0",
                 "--no-progress"])


def damage(path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # replaced by a shard of other rows
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(path).slice(0, 1), path)


@pytest.mark.parametrize("how", ["deleted", "truncated", "short"])
def test_a_damaged_shard_is_named_and_a_rerun_repairs_it(folder, tmp_path, capsys, how):
    from semantilm.data.token_dataset import load_token_dataset

    out = tmp_path / "tokens"
    assert tokenize(folder, out) == 0
    assert "wrote 10 token rows" in capsys.readouterr().out
    reference = {r["id"]: r["semantic_ids"] for r in load_token_dataset(out)}
    damage(out / "train" / "shard-00001.parquet", how)

    with pytest.raises(ValueError) as info:
        load_token_dataset(out)
    message = str(info.value)
    assert "shard-00001.parquet" in message and "semantilm tokenize" in message and str(out) in message
    assert "shard-00000" not in message and "shard-00002" not in message

    assert tokenize(folder, out) == 0
    said = capsys.readouterr().out
    assert re.search(r"wrote 10 token rows, 0 failures .*10 audio inputs", said), said
    assert "[1]" in said  # the repaired shard is named
    assert {r["id"]: r["semantic_ids"] for r in load_token_dataset(out)} == reference


def test_every_bad_shard_is_named(folder, tmp_path):
    from semantilm import load_token_dataset

    out = tmp_path / "tokens"
    assert tokenize(folder, out) == 0
    (out / "train" / "shard-00000.parquet").unlink()
    (out / "train" / "shard-00002.parquet").write_bytes(b"PAR1 cut")
    with pytest.raises(ValueError) as info:
        load_token_dataset(out)
    message = str(info.value)
    assert "shard-00000.parquet is missing (it should hold 4 rows)" in message
    assert "shard-00002.parquet is cut off or not Parquet (it should hold 2 rows)" in message
