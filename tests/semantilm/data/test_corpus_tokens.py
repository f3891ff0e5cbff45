"""``semantilm tokenize`` on a folder of 200+ short clips: one process, two processes, a run killed with
SIGKILL and restarted, failure records, and refusal of a folder made with another codec."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semantilm.data.tokenize_settings import TokenizeSettings, default_num_workers
from tests.semantilm.data.clips import BROKEN, good_ids, make_folder

ROOT = Path(__file__).resolve().parents[3]
CODEC = ["--codec", "tiny-random", "--token-rate", "50"]


def rows_of(folder: Path) -> dict[str, tuple]:
    from semantilm.data.token_dataset import load_token_dataset

    data = load_token_dataset(folder)
    return {r["id"]: (r["semantic_ids"], r["acoustic_ids"], r["num_frames"], r.get("caption")) for r in data}


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from semantilm.cli.main import main; sys.exit(main())", *args]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    """One in-process run (no DataLoader workers, shards of 32)."""
    import torch

    from semantilm.cli.main import main

    out = tmp_path_factory.mktemp("reference") / "tokens"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["tokenize", str(corpus), *CODEC, "--out", str(out), "--shard-size", "32", "--num-workers", "0",
                     "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_one_process_rows_failures_and_manifest(corpus, reference):
    rows = rows_of(reference)
    assert sorted(rows) == good_ids(corpus) and len(rows) == 200
    assert "a/clip000.wav" in rows and "b/clip000.wav" in rows  # one stem in two folders: two rows
    assert all(frames == 8 and len(s) == len(a) == 8 for s, a, frames, _ in rows.values())  # 0.3 s at 25 frames/s
    assert rows["a/clip020.wav"][3] == "noise number 20" and rows["a/clip022.wav"][3] == "noise number 22"
    assert rows["b/clip021.wav"][3] is None  # not in metadata.csv
    failures = [json.loads(line) for line in (reference / "failures.jsonl").read_text().splitlines()]
    assert {f["id"]: f["reason"].split(":")[0] for f in failures} == BROKEN
    manifest = json.loads((reference / "semantilm_tokens.json").read_text())
    assert manifest["rows"] == 200 and manifest["failures"] == len(BROKEN) and manifest["num_shards"] == 7
    assert manifest["variant"] == "tiny-r50" and manifest["token_rate"] == 50 and manifest["semantic_vocab_size"] == 64
    assert manifest["hours"] == pytest.approx(200 * 0.3 / 3600)
    assert manifest["input"]["kind"] == "folder" and "speaker" in manifest["columns"]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_make_the_same_rows_as_one(corpus, reference, tmp_path, one_torch_thread):
    """accelerate launch, 2 CPU processes: the same rows (ids, tokens) as one process; kept under a minute."""
    from tests.semantilm.training.test_recipes import free_port

    out = tmp_path / "tokens"
    script = Path(sys.executable).with_name("semantilm")  # the console script, as in the docs
    if not script.is_file():
        pytest.skip("the semantilm console script is not installed beside this python")
    # torchrun with 2 processes on the CPU, as test_recipes launches (accelerate's --cpu would start one process)
    runner = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "configs" / "accelerate" / "cpu.yaml"), "--main_process_port", str(free_port()), str(script)]
    proc = subprocess.run([*runner, "tokenize", str(corpus), *CODEC, "--out", str(out), "--shard-size", "32",
                           "--num-workers", "1", "--no-progress"], env=env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rows_of(out) == rows_of(reference)
    assert (out / "failures.jsonl").read_text() == (reference / "failures.jsonl").read_text()

    # A run interrupted under 2 processes resumes with 1: only the missing shards are made.
    from semantilm.cli.main import main

    for k in (1, 4, 6):
        (out / "train" / f"shard-{k:05d}.parquet").unlink()
        (out / ".work" / f"done-{k:05d}.json").unlink()
    (out / "semantilm_tokens.json").unlink()
    kept = (out / "train" / "shard-00000.parquet").stat().st_mtime_ns
    assert main(["tokenize", str(corpus), *CODEC, "--out", str(out), "--shard-size", "32", "--num-workers", "0",
                 "--no-progress"]) == 0
    assert (out / "train" / "shard-00000.parquet").stat().st_mtime_ns == kept
    assert rows_of(out) == rows_of(reference)
    assert (out / "failures.jsonl").read_text() == (reference / "failures.jsonl").read_text()


def test_killed_run_restarts_to_the_same_rows(corpus, reference, tmp_path):
    """SIGKILL once a shard exists, then the same command again: exactly the rows of an uninterrupted run."""
    out = tmp_path / "tokens"
    args = cli("tokenize", str(corpus), *CODEC, "--out", str(out), "--shard-size", "32", "--num-workers", "1",
               "--no-progress")
    proc = subprocess.Popen(args, env=env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list((out / "train").glob("shard-*.parquet")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / ".work").glob("done-*.json")))
    assert done_before < 7 and not (out / "semantilm_tokens.json").exists()
    rerun = subprocess.run(args, env=env(), cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rows_of(out) == rows_of(reference)
    assert (out / "failures.jsonl").read_text() == (reference / "failures.jsonl").read_text()


def test_a_finished_folder_is_not_redone_and_another_codec_is_refused(reference, corpus, capsys):
    from semantilm.cli.main import main

    before = (reference / "train" / "shard-00000.parquet").stat().st_mtime_ns
    assert main(["tokenize", str(corpus), *CODEC, "--out", str(reference), "--shard-size", "32", "--no-progress"]) == 0
    assert (reference / "train" / "shard-00000.parquet").stat().st_mtime_ns == before
    assert "wrote 200 token rows" in capsys.readouterr().out
    assert main(["tokenize", str(corpus), "--codec", "tiny-random", "--out", str(reference), "--shard-size", "32"]) == 2
    assert "another codec" in capsys.readouterr().err
    assert main(["tokenize", str(corpus), *CODEC, "--out", str(reference), "--shard-size", "16"]) == 2
    assert "shard_size" in capsys.readouterr().err


def test_on_error_stop_names_the_input(corpus, tmp_path, capsys, one_torch_thread):
    from semantilm.cli.main import main

    code = main(["tokenize", str(corpus), *CODEC, "--out", str(tmp_path / "t"), "--on-error", "stop",
                 "--num-workers", "0", "--shard-size", "1000", "--no-progress"])
    assert code == 1
    assert "broken/" in capsys.readouterr().err


def test_readers_by_default_only_beside_an_accelerator():
    assert default_num_workers("cpu") == 0
    assert default_num_workers("cuda:1") == default_num_workers("cuda") == 2
    assert TokenizeSettings().readers == 0 and TokenizeSettings(num_workers=3).readers == 3


def _mark(out: Path, k: int, mtime: float) -> None:
    (out / ".work").mkdir(parents=True, exist_ok=True)
    (out / ".work" / f"busy-{k:05d}").touch()
    os.utime(out / ".work" / f"busy-{k:05d}", (mtime, mtime))


def _second_of_two(corpus: Path, out: Path):
    from semantilm.codec_api import load_codec
    from semantilm.data.corpus_tokens import tokenize_corpus

    codec = load_codec("tiny-random", 50, 16384, "cpu", None, decoder=False)
    source = {"name": "tiny-random", "token_rate": 50, "vocab": 16384}
    return tokenize_corpus(str(corpus), codec, out, settings=TokenizeSettings(shard_size=32, num_workers=0), rank=1,
                           world_size=2, progress=False, codec_source=source)


def test_a_shard_another_process_started_is_left_to_it(corpus, reference, tmp_path, one_torch_thread):
    """Process 1 of 2, done with its own shards, helps with the missing ones except a shard another
    process of the same run has started (a mark left by a stopped run does not hold it back), and
    waits for that shard to be written by its process."""
    import shutil
    import threading

    from semantilm.data.token_dataset import done_path, shard_failures_path, shard_path

    out = tmp_path / "tokens"
    _mark(out, 0, time.time() + 3600)  # process 0 is on shard 0 during this whole run
    _mark(out, 2, time.time() - 3600)  # a stopped run's mark
    others = range(1, json.loads((reference / "semantilm_tokens.json").read_text())["num_shards"])

    def process_zero_finishes_shard_zero() -> None:
        while not all(done_path(out, k).is_file() for k in others):
            time.sleep(0.05)
        time.sleep(0.5)
        for path in (shard_failures_path, shard_path, done_path):  # the order write_shard keeps
            path(out, 0).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path(reference, 0), path(out, 0))

    peer = threading.Thread(target=process_zero_finishes_shard_zero, daemon=True)
    peer.start()
    second = _second_of_two(corpus, out)
    peer.join(timeout=60)
    assert 2 in second.shards_written and 0 not in second.shards_written
    assert second.manifest is not None and rows_of(out) == rows_of(reference)


def test_a_shard_whose_process_died_is_taken_over(corpus, reference, tmp_path, one_torch_thread, monkeypatch):
    import semantilm.data.corpus_tokens as corpus_tokens

    monkeypatch.setattr(corpus_tokens, "PEER_PATIENCE_SECONDS", 1.0)
    out = tmp_path / "tokens"
    _mark(out, 0, time.time() + 3600)  # marked during the run, never written
    second = _second_of_two(corpus, out)
    assert second.shards_written[-1] == 0 and second.manifest is not None
    assert rows_of(out) == rows_of(reference)
