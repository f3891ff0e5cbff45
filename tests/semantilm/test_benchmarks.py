"""The benchmark runner: ``--quick`` rewrites a RESULTS file with every table and keeps earlier measurements."""

import importlib.util
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).parents[2] / "benchmarks" / "run_all.py"


@pytest.mark.slow
def test_quick_run_writes_every_table_and_keeps_earlier_results(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_all", RUNNER)
    run_all = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "run_all", run_all)  # dataclasses look their module up there
    monkeypatch.setattr(sys, "path", list(sys.path))  # the runner puts benchmarks/ first
    monkeypatch.setenv("TQDM_DISABLE", "1")  # the runner sets it; restored after the test
    spec.loader.exec_module(run_all)
    out = tmp_path / "RESULTS.md"
    out.write_text("stale\n")
    assert run_all.main(["--quick", "--threads", "1", "--device", "cpu", "--out", str(out)]) == out
    text = out.read_text()
    assert "stale" not in text and [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]
    for needle in ("- date: ", "- machine: ", "- versions: Python", "torch ", "--quick",
                   "### Codec encode (tiny-r100)", "### Codec decode (tiny-r100", "hours of audio per hour",
                   "### LM training (tiny", "### LM generation (tiny", "## Earlier measurements"):
        assert needle in text, needle
    encode = text.split("### Codec encode")[1].split("###")[0]
    assert "| 2 | 0.5 |" in encode and "| 1 | 1 |" in encode  # a batch-size and a length sweep
    earlier = (RUNNER.parent / "EARLIER_RESULTS.md").read_text()
    assert "| batched | 8 | 40.46 | 5.06 |" in earlier and "| batched | 8 | 40.46 | 5.06 |" in text
    assert text.count("| base-100m | 100.5 | train | 2x512 | 42 |") == 1
