"""The benchmark runner: ``--quick`` rewrites a one-screen RESULTS file; rows, ratios and the distilled row."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture
def run_all(monkeypatch):
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])  # the runner imports user_workloads
    monkeypatch.setenv("TQDM_DISABLE", "1")  # the runner sets it; restored after the test
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "run_all", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class FakeOfficial:
    """The official timer's answers, without running it."""

    python, source, reference, threads = "official-python", "official-src", BENCHMARKS, 2
    versions = {"torch": "2.13.0"}

    def time(self, mode, steps=50):
        return {"enc1": {"seconds": 15.0}, "enc8": {"seconds": 60.0, "per_clip_seconds": 7.5},
                "dec": {"seconds": 200.0}}[mode]


def fake_run(name, kwargs):
    if kwargs.get("sampler") == "distilled":
        raise RuntimeError("this codec has no distilled student")
    if name == "encode":
        return {"seconds": 10.0 if kwargs["work"] == "enc1" else 32.0}
    return {"seconds": {"ddim": 100.0, "dpmsolver++": 40.0}[kwargs["sampler"]]}


def test_codec_rows_stand_against_the_official_figures(run_all, monkeypatch):
    import user_workloads

    monkeypatch.setattr(user_workloads, "decode_settings_supported", lambda sampler, steps: "unknown sampler")
    rows = run_all.codec_rows(run_all.FULL, fake_run, FakeOfficial())
    assert [r.seconds for r in rows] == [10.0, 4.0, 100.0, 40.0]  # 8 clips: per clip
    assert [r.official for r in rows] == [15.0, 7.5, 200.0, 200.0]  # samplers against the official DDIM 50
    table = "\n".join(run_all.codec_table(rows, with_official=True))
    assert "| 10 s | 15 s | 1.50x |" in table and "| 40 s | 200 s (DDIM 50) | 5.00x |" in table
    assert "distilled" not in table


def test_the_distilled_rows_time_the_student_in_both_decoder_precisions(run_all, monkeypatch):
    import user_workloads

    monkeypatch.setattr(user_workloads, "decode_settings_supported", lambda sampler, steps: None)

    def with_student(name, kwargs):
        if kwargs.get("sampler") == "distilled":
            return {"seconds": {"float32": 8.0, "bfloat16": 5.0}[kwargs["decoder_dtype"]]}
        return fake_run(name, kwargs)

    rows = run_all.codec_rows(run_all.FULL, with_student, FakeOfficial())
    assert [r.work.split(": ", 1)[1] for r in rows[-2:]] == ["distilled student, 4 steps",
                                                             "distilled student, 4 steps, bf16 decoder"]
    assert [r.seconds for r in rows[-2:]] == [8.0, 5.0] and [r.official for r in rows[-2:]] == [200.0, 200.0]
    assert 'DecodeSettings(sampler="distilled", steps=4)' in rows[-2].call
    assert 'decoder_dtype="bfloat16"' in rows[-1].call and "decoder_dtype" not in rows[-2].call
    rows = run_all.codec_rows(run_all.FULL, fake_run, FakeOfficial())  # a failed decode is a cell that says why
    assert all("no distilled student" in r.failed and r.seconds is None for r in rows[-2:])


def test_a_failed_measurement_is_a_cell_not_a_crash(run_all):
    def broken(name, kwargs):
        raise RuntimeError("out of memory\nwhile decoding")

    rows = run_all.codec_rows(run_all.QUICK, broken, run_all.Official(None, None, BENCHMARKS, 1))
    table = "\n".join(run_all.codec_table(rows, with_official=False))
    assert "failed: while decoding | not run |" in table


@pytest.mark.parametrize(("argv", "message"), [
    (["--quick", "--official", "python"], "leave out --official"),
    (["--official", sys.executable, "--official-src", ""], "--official needs the official checkout"),
    (["--official", sys.executable, "--official-src", "/no/such/checkout"], "does not exist"),
])
def test_bad_official_arguments_are_named(run_all, argv, message, capsys, monkeypatch):
    monkeypatch.delenv("SEMANTICODEC_OFFICIAL", raising=False)
    with pytest.raises(SystemExit):
        run_all.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_writes_one_screen_of_figures(run_all, tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("stale\n")
    assert run_all.main(["--quick", "--threads", "1", "--out", str(out)]) == out
    text = out.read_text()
    assert "stale" not in text and [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]
    assert len(text.splitlines()) <= 60
    assert "--out" not in text and str(tmp_path) not in text  # no path of this machine
    for needle in ("- machine: ", " cores (", "- software: Python", "torch ", "run_all.py --quick --threads 1`", "not run in this run",
                   "encode 1 clip (1 s)", "encode 8 clips", "DDIM 5 steps", "DPM-Solver++ 3 steps",
                   "`tokenize_corpus(", "`semantilm tokenize synthetic --codec tiny`", "`train_lm(",
                   "`generate_audio("):
        assert needle in text, needle
    assert "failed" not in text


def test_the_page_fits_one_screen_and_names_no_path_of_this_machine(run_all, monkeypatch):
    import user_workloads

    monkeypatch.setattr(user_workloads, "decode_settings_supported", lambda sampler, steps: None)
    official = FakeOfficial()
    official.python, official.source = "/some/venv/bin/python", "/some/checkout"
    codec = run_all.codec_rows(run_all.FULL, lambda name, kw: {"seconds": 8.0} if kw.get("sampler") == "distilled"
                               else fake_run(name, kw), official)
    pipeline = [run_all.Row("tokenise", "`tokenize_corpus(...)`", 40.0, rate="7.2 h audio / h")] * 4
    facts = {"date": "2026-01-01 00:00 UTC", "cpu": "A CPU", "cores": 2, "logical": 2, "threads": 2, "load": 1.0,
             "versions": "Python 3"}
    text = run_all.render(run_all.FULL, codec, pipeline, facts, official)
    assert len(text.splitlines()) <= 60 and "/some/" not in text
    assert "run_all.py --official OFFICIAL_VENV/bin/python --official-src OFFICIAL_CHECKOUT`" in text
    assert "torch 2.13.0, stand-in weights" in text and "| 8 s | 200 s (DDIM 50) | 25.00x |" in text
    assert "The machine was shared" not in text
    busy = run_all.render(run_all.FULL, codec, pipeline, {**facts, "load": 7.5}, official)
    assert "The machine was shared (load 7.5 on 2 cores)" in busy


def test_the_committed_results_page_is_the_runners(run_all):
    text = (BENCHMARKS / "RESULTS.md").read_text()
    assert text.startswith("# Benchmark results\n\nWritten by `python benchmarks/run_all.py")
    assert len(text.splitlines()) <= 60, "RESULTS.md is one screen: rerun benchmarks/run_all.py instead of adding to it"
