"""`semantilm demo`: data set, held-out prompts, outputs, CLI."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from semantilm.demo import PHRASINGS, DemoConfig, build_demo_dataset, demo_captions, run_demo


def test_held_out_captions_are_not_in_the_training_set():
    config = DemoConfig(frequencies=(200, 300, 500), clips_per_caption=2, seconds=0.5)
    data = build_demo_dataset(config)
    captions = demo_captions(config.frequencies)
    held_out = {captions[pair] for pair in config.held_out}
    assert len(held_out) == 3 and not held_out & set(data["caption"])
    assert len(data) == 2 * (3 * len(PHRASINGS) - 3)
    # every held-out frequency is still heard in training, with the other phrasing
    for freq, phrasing in config.held_out:
        other = next(name for name in PHRASINGS if name != phrasing)
        assert captions[(freq, other)] in set(data["caption"])


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="held_out"):
        DemoConfig(frequencies=(200,), held_out=[(300, "pure")])
    with pytest.raises(ValueError, match="train_steps"):
        DemoConfig(train_steps=0)
    with pytest.raises(ValueError, match="seconds"):
        DemoConfig(seconds=0.1)
    with pytest.raises(ValueError, match="guidance_scale"):
        DemoConfig(guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="takes"):
        DemoConfig(takes=0)
    with pytest.raises(ValueError, match="top_k=1 draws only the likeliest id, so the 2 takes of every prompt would be"):
        DemoConfig(top_k=1, takes=2)
    DemoConfig(top_k=1, takes=1)


@pytest.mark.slow
def test_demo_writes_audio_pictures_and_report(tmp_path):
    """The machinery with the random tiny codec (its audio carries no meaning)."""
    config = DemoConfig(output_dir=str(tmp_path / "demo"), codec="tiny-random", frequencies=(300, 500), clips_per_caption=1,
                        seconds=0.5, train_steps=3, batch_size=2, decode_steps=1)
    result = run_demo(config)
    out = tmp_path / "demo"
    for i in range(2):
        for take in (1, 2):  # two takes per prompt by default
            wave, rate = sf.read(out / f"prompt_{i:02d}_take{take}.wav")
            assert rate == 16000 and wave.ndim == 1 and len(wave) > 0  # an untrained LM may end early
            assert (out / f"prompt_{i:02d}_take{take}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((out / "report.json").read_text())
    assert report["train_steps"] == 3 and len(report["prompts"]) == 4
    assert [r["prompt"] for r in report["prompts"]] == [r["prompt"] for r in result.prompts]
    rows = result.prompts  # prompt by prompt, takes in order
    assert [r["take"] for r in rows] == [1, 2, 1, 2]
    assert rows[0]["prompt"] == rows[1]["prompt"] != rows[2]["prompt"] == rows[3]["prompt"]
    assert "Pitch accuracy" in (out / "report.md").read_text()
    assert "top_k 2, guidance 2; decode steps 1" in (out / "report.md").read_text()  # how it was sampled


def test_cli_demo_passes_its_options_to_the_demo(tmp_path, capsys, monkeypatch):
    """The command's flags reach DemoConfig and its summary line counts the clips (run_demo stubbed)."""
    import semantilm.demo
    from semantilm.cli.main import main
    from semantilm.demo import DemoResult

    seen = []

    def fake_run_demo(config):
        seen.append(config)
        rows = [{"pitch_ok": i % 2 == 0} for i in range(len(config.held_out) * config.takes)]
        return DemoResult(tmp_path, 0.5, rows, {"total": 1.0})

    monkeypatch.setattr(semantilm.demo, "run_demo", fake_run_demo)
    code = main(["demo", "--codec", "tiny-random", "--out", str(tmp_path / "d"), "--train-steps", "2", "--decode-steps",
                 "1", "--guidance-scale", "1.5", "--top-k", "3", "--takes", "2", "--seed", "4"])
    assert code == 0 and len(seen) == 1
    config = seen[0]
    assert (config.codec, config.output_dir, config.train_steps, config.decode_steps) == ("tiny-random", str(tmp_path / "d"), 2, 1)
    assert (config.guidance_scale, config.top_k, config.takes, config.seed) == (1.5, 3, 2, 4)
    assert "demo: 8/16 clips for 8 unseen prompts (2 per prompt)" in capsys.readouterr().out
    code = main(["demo", "--codec", "tiny-random", "--out", str(tmp_path / "e"), "--top-k", "1", "--takes", "2"])
    assert code == 2 and len(seen) == 1  # a usage error, before the demo runs
    assert "top_k=1 draws only the likeliest id" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo(tmp_path, capsys):
    from semantilm.cli.main import main

    code = main(["demo", "--codec", "tiny-random", "--out", str(tmp_path / "d"), "--train-steps", "2",
                 "--decode-steps", "1", "--guidance-scale", "1.5", "--top-k", "3", "--takes", "1"])
    assert code == 0
    assert "clips for 8 unseen prompts (1 per prompt)" in capsys.readouterr().out
    assert (tmp_path / "d" / "report.md").is_file() and (tmp_path / "d" / "prompt_07.wav").is_file()
    config = json.loads((tmp_path / "d" / "report.json").read_text())["config"]
    assert config["guidance_scale"] == 1.5 and config["top_k"] == 3 and config["train_steps"] == 2


@pytest.fixture(scope="module")
def shipped_demo(tmp_path_factory):
    """The README's main command as shipped: default settings, the embedded tiny codec."""
    out = tmp_path_factory.mktemp("demo")
    return run_demo(DemoConfig(output_dir=str(out))), out


@pytest.mark.slow
def test_shipped_demo_runs_offline_and_writes_everything(shipped_demo):
    result, out = shipped_demo
    report = json.loads((out / "report.json").read_text())
    assert report["codec"] == "tiny" and len(result.prompts) == DemoConfig().takes * len(DemoConfig().frequencies)
    assert all((out / r["file"]).is_file() and (out / r["file"].replace(".wav", ".png")).is_file() for r in result.prompts)
    assert all(r["measured_hz"] is None or r["measured_hz"] >= 0 for r in result.prompts)
    assert all("codec_round_trip_ok" in r for r in report["prompts"])  # separates codec from LM errors
    assert "the codec's own round trip" in (out / "report.md").read_text()
    assert report["losses"][-1][1] < report["losses"][0][1]  # the LM learned
    assert result.seconds["total"] < 300  # the README's promise of a few minutes, on the CI machine too


@pytest.mark.slow
def test_shipped_demo_audio_follows_unseen_prompts(shipped_demo):
    """Most unseen prompts get the pitch they ask for (within 3 %)."""
    result, _ = shipped_demo
    misses = [(r["prompt"], r["measured_hz"]) for r in result.prompts if not r["pitch_ok"]]
    assert result.pitch_accuracy >= 0.75, f"{result.pitch_accuracy:.0%} within 3 %; misses: {misses}"


def test_every_phrasing_asks_for_its_frequency():
    """The report reads the asked frequency from the caption: each phrasing must be readable."""
    from semantilm.eval.adherence import parse_caption

    for (freq, _), caption in demo_captions((200.0, 900.0)).items():
        assert parse_caption(caption) == {"kind": "tone", "frequency": freq, "start_frequency": None}, caption
    default = DemoConfig()
    assert {name for _, name in default.held_out} == set(PHRASINGS)  # each phrasing held out somewhere


def test_demo_decodes_with_the_distilled_decoder_when_the_codec_has_one(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    from semantilm.demo import demo_decode_settings

    with_student = SimpleNamespace(decoder=SimpleNamespace(student=object()))
    without = SimpleNamespace(decoder=SimpleNamespace(student=None))
    auto = DemoConfig()
    assert (demo_decode_settings(auto, with_student).sampler, demo_decode_settings(auto, with_student).steps) == (
        "distilled", 4)
    assert (demo_decode_settings(auto, without).sampler, demo_decode_settings(auto, without).steps) == ("dpmsolver++", 25)
    chosen = DemoConfig(decode_sampler="ddim", decode_steps=10)
    assert (demo_decode_settings(chosen, with_student).sampler, demo_decode_settings(chosen, with_student).steps) == (
        "ddim", 10)
    with pytest.raises(ValueError, match="decode_sampler"):
        DemoConfig(decode_sampler="fast")

    import semantilm.demo
    from semantilm.cli.main import main
    from semantilm.demo import DemoResult

    seen = []
    monkeypatch.setattr(semantilm.demo, "run_demo",
                        lambda config: seen.append(config) or DemoResult(tmp_path, 1.0, [], {"total": 1.0}))
    assert main(["demo", "--out", str(tmp_path / "d"), "--sampler", "distilled", "--decode-steps", "2"]) == 0
    assert (seen[0].decode_sampler, seen[0].decode_steps) == ("distilled", 2)
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(tmp_path / "d"), "--sampler", "fast"])
    assert exit_.value.code == 2 and "invalid choice: 'fast'" in capsys.readouterr().err
