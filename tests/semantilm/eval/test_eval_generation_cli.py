"""``semantilm eval-generation`` on folders of tones and noise with the tiny judge models; token folders
decoded on the fly; bad arguments refused before any model loads."""

import csv
import json
from pathlib import Path

import pytest

from semantilm.cli.main import main


def run(capsys, *argv):
    code = main(["eval-generation", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def judges(tiny_clap, tiny_ast):
    return ["--clap-model", tiny_clap, "--tagger", tiny_ast, "--no-progress", "--bootstrap", "20"]


def test_tones_against_the_same_tones_and_against_noise(tiny_clap, tiny_ast, sound_folders, tmp_path, capsys):
    records = {}
    for ref in ("same_tones", "noise"):
        out = tmp_path / f"{ref}.json"
        code, printed, err = run(capsys, sound_folders["tones"], "--reference", sound_folders[ref], "--out", out,
                                 *judges(tiny_clap, tiny_ast))
        assert code == 0, err
        assert "| FAD ↓" in printed and "| KL ↓" in printed and "| CLAP score ↑" in printed
        assert "FAD is biased upwards at small N (here 11 generated, 11 reference clips" in printed
        assert f"wrote {out} and {out.with_suffix('.csv')}" in printed
        records[ref] = json.loads(out.read_text())
        rows = list(csv.DictReader(out.with_suffix(".csv").open()))
        generated = [r for r in rows if r["set"] == "generated"]
        assert len(generated) == 11 and all(r["clap_score"] and r["kl"] and r["top_label"] for r in generated)
        assert {r["set"] for r in rows} == {"generated", "reference"}
    same, noise = records["same_tones"]["summary"], records["noise"]["summary"]
    assert same["fad"] < 0.01 < 0.5 < noise["fad"]
    assert same["kl"] < 1e-5 < 1e-4 < noise["kl"]
    assert records["noise"]["settings"]["tagger"]["name"] == tiny_ast
    assert records["noise"]["settings"]["reference"] == f"audio folder {sound_folders['noise']!r}"


def test_a_token_folder_is_decoded_on_the_fly(tiny_clap, tiny_ast, sound_folders, tmp_path, capsys):
    tokens = tmp_path / "tokens"
    assert main(["tokenize", sound_folders["tones"], "--codec", "tiny-random", "--caption-column", "caption",
                 "--max-examples", "4", "--out", str(tokens), "--no-progress"]) == 0
    out = tmp_path / "m.json"
    code, printed, err = run(capsys, sound_folders["tones"], "--reference", tokens, "--out", out, "--steps", "2",
                             "--metrics", "kl,clap", *judges(tiny_clap, tiny_ast))
    assert code == 0, err
    record = json.loads(out.read_text())
    assert record["summary"]["num_reference"] == 4 and record["summary"]["kl_paired_clips"] == 4
    assert record["settings"]["reference"] == f"token folder {str(tokens)!r}"
    reference = [r for r in csv.DictReader(out.with_suffix(".csv").open()) if r["set"] == "reference"]
    assert sorted(r["name"] for r in reference) == ["t1100.wav", "t1210.wav", "t1320.wav", "t220.wav"]
    assert all(abs(float(r["seconds"]) - 1.0) < 0.02 for r in reference)  # cut to the recorded duration
    # A token folder of another codec is refused, naming both.
    code, _, err = run(capsys, tokens, "--out", tmp_path / "x.json", "--codec", "tiny", "--metrics", "clap",
                       *judges(tiny_clap, tiny_ast))
    assert code == 2 and "holds tokens of codec 'tiny-r100', but the codec given is" in err


@pytest.fixture
def no_judge_loads(monkeypatch):
    """Fail the test if a judge model or codec loads (argument errors must come first)."""
    import semantilm.codec_api
    from semantilm.eval import pretrained_audio_models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(pretrained_audio_models, "load_pretrained", refuse)
    monkeypatch.setattr(semantilm.codec_api, "load_codec", refuse)


BAD = [
    # (arguments after GENERATED, what stderr says)
    (["--metrics", "fad,is"], "argument --metrics: must be a comma-separated list of distinct names from fad,kl,clap"),
    (["--metrics", "clap,clap"], "argument --metrics: must be a comma-separated list"),
    (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
    (["--bootstrap", "-1"], "argument --bootstrap: must be an integer >= 0, got '-1'"),
    (["--on-error", "ignore"], "argument --on-error: invalid choice: 'ignore'"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_arguments_exit_2_before_any_model_loads(extra, message, sound_folders, tmp_path, capsys, no_judge_loads):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval-generation", sound_folders["tones"], "--out", str(tmp_path / "m.json"), *extra])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_usage_errors_exit_2_and_write_nothing(sound_folders, tmp_path, capsys, no_judge_loads):
    tones = sound_folders["tones"]
    cases = [
        ([tmp_path / "missing", "--out", tmp_path / "m.json"], f"GENERATED '{tmp_path / 'missing'}' does not exist"),
        ([tones, "--metrics", "fad,kl,clap", "--out", tmp_path / "m.json"],
         "fad,kl compare the generated clips with reference clips; pass --reference"),
        ([tones, "--metrics", "kl", "--out", tmp_path / "m.json"], "kl compare the generated clips"),
        ([tones, "--reference", tmp_path, "--out", tmp_path / "m.json"],
         "--reference '" + str(tmp_path) + "' is neither a folder of audio files"),
        ([tones, "--metrics", "clap", "--out", tmp_path / "m.txt"], "--out must name a .json file"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err, err
    (tmp_path / "m.csv").write_text("an earlier run's rows\n")
    code, _, err = run(capsys, tones, "--metrics", "clap", "--out", tmp_path / "m.json")
    assert code == 2 and "already exist (first: '" + str(tmp_path / "m.csv") + "')" in err
    assert not (tmp_path / "m.json").exists() and (tmp_path / "m.csv").read_text() == "an earlier run's rows\n"


def test_models_that_cannot_be_loaded_exit_2_naming_them(tiny_ast, sound_folders, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = [sound_folders["tones"], "--metrics", "clap", "--out", tmp_path / "m.json", "--no-progress",
            "--cache-dir", tmp_path / "hub"]
    code, _, err = run(capsys, *argv, "--clap-model", "nobody/no-clap")
    assert code == 2 and "the CLAP model 'nobody/no-clap' (--clap-model) could not be loaded" in err
    assert "huggingface-cli download nobody/no-clap" in err
    code, _, err = run(capsys, *argv, "--clap-model", tiny_ast)
    assert code == 2 and "is a 'audio-spectrogram-transformer' model; pass a CLAP checkpoint" in err
    assert not Path(tmp_path / "m.json").exists()
