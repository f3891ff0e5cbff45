"""The command line: every sub-command runs offline and errors exit non-zero with a message."""

from pathlib import Path

import pytest
import torch

from codec.token_file import load_tokens
from semantilm.cli.main import main

EXAMPLES = Path(__file__).parents[3] / "examples" / "audio"


def test_info_lists_variants(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "official-r100-v16384" in out and "1.35" in out
    assert "tiny (embedded)" in out  # the shipped tiny codec: 25 frames/s x (6 + 8) bits = 0.35 kbps
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("tiny")] == ["0.35"]


def test_encode_folder_with_the_offline_codec(tmp_path):
    assert main(["encode", str(EXAMPLES), "--codec", "tiny-random", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.tokens.npz"))
    assert [f.name for f in files] == ["sweep_stereo_22k.tokens.npz", "tone_440hz_16k.tokens.npz"]
    record = load_tokens(files[1])
    # 2 s rounds up to 2.08 s (a multiple of 0.16 s), 50 frames/s: 104 frames, as the official code counts.
    assert record.tokens.shape == (104, 2) and record.token_rate == 100
    assert record.source_sample_rate == 16000 and record.num_samples == 32000
    sweep = load_tokens(files[0])
    assert sweep.source_sample_rate == 22050 and sweep.num_samples == 24000


def test_encode_errors(tmp_path, capsys):
    assert main(["encode", str(tmp_path / "missing.wav"), "--codec", "tiny-random", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["encode", str(tmp_path / "empty"), "--codec", "tiny-random", "--out", str(tmp_path)]) == 2
    assert "holds no audio files" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....")
    assert main(["encode", str(bad), "--codec", "tiny-random", "--out", str(tmp_path)]) == 1
    assert "could not read audio file" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_token_file_round_trip_and_errors(tmp_path):
    from codec.token_file import TokenFile, save_tokens

    record = TokenFile(torch.tensor([[1, 2], [3, 4]]), "tiny-r100", 100, 64, 64, 321, 44100, "x.wav")
    path = save_tokens(tmp_path / "a.tokens.npz", record)
    assert torch.equal(load_tokens(path).tokens, record.tokens)
    assert load_tokens(path).num_samples == 321
    with pytest.raises(ValueError, match="must be \\[T, 2\\]"):
        save_tokens(tmp_path / "b.tokens.npz", TokenFile(torch.zeros(3, dtype=torch.long), "x", 100, 1, 1, 1, 1))
    (tmp_path / "junk.tokens.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable token file"):
        load_tokens(tmp_path / "junk.tokens.npz")


# ----- tokenize / train / generate / info --checkpoint (all with the offline tiny codec) -----
ROOT = Path(__file__).parents[3]
TINY_T2A = ROOT / "configs" / "recipes" / "text_to_audio" / "tiny_cpu.yaml"


def train_args(out, *more):
    return ["train", "--config", str(TINY_T2A), "--override", f"train.output_dir={out}",
            f"model.size={ROOT / 'configs' / 'lm' / 'tiny.yaml'}", "train.max_steps=3", "train.save_steps=3",
            "data.synthetic_examples=8", "train.disable_tqdm=true", "train.report_to=none", *more]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    threads = torch.get_num_threads()  # module fixtures run before the one-thread fixture
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("cli") / "t2a"
        assert main(train_args(out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_train_runs_a_recipe_in_process(trained, capsys):
    assert (trained / "checkpoint-3" / "semantilm_config.json").is_file()
    assert (trained / "semantilm_codec.json").is_file() and (trained / "model.safetensors").is_file()


def test_train_errors(tmp_path, capsys):
    assert main(train_args(tmp_path, "train.lerning_rate=1")) == 2
    assert "unknown key 'train.lerning_rate' (did you mean 'learning_rate'?)" in capsys.readouterr().err
    assert main(train_args(tmp_path, "train.max_steps=many")) == 2
    assert "key 'train.max_steps': value 'many' (str) is not of the expected type int" in capsys.readouterr().err
    assert main(["train", "--config", str(TINY_T2A), "--recipe", "continuation"]) == 2
    assert "is a text_to_audio config" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(train_args(tmp_path, "model.size=nowhere/lm.yaml")) == 2
    assert "model.size='nowhere/lm.yaml' is not a file" in capsys.readouterr().err


def test_info_prints_a_checkpoints_layout(trained, capsys):
    assert main(["info", "--checkpoint", str(trained)]) == 0
    out = capsys.readouterr().out
    for expected in ("pattern         interleave", "tiny-r100 (50 frames/s", "--codec tiny-random --token-rate 100",
                     "<|audio_start|>=", "semantic ids", "acoustic ids", "text tokenizer  sentencepiece"):
        assert expected in out, expected
    assert main(["info", "--checkpoint", str(EXAMPLES)]) == 2
    assert "not a semantilm LM checkpoint" in capsys.readouterr().err


def test_generate_token_files_from_text_and_audio(trained, tmp_path):
    out = tmp_path / "gen"
    args = ["generate", "--checkpoint", str(trained), "--seconds", "0.1", "--out", str(out), "--tokens-only", "--seed", "0"]
    assert main([*args, "--text", "a rising sweep", ""]) == 0
    records = [load_tokens(out / f"text_{i:02d}.tokens.npz") for i in (0, 1)]
    assert all(1 <= r.tokens.shape[0] <= 5 and r.codec_variant == "tiny-r100" for r in records)
    assert records[0].source == "generated from text: a rising sweep"
    assert main([*args, "--audio", str(EXAMPLES / "tone_440hz_16k.wav")]) == 0
    cont = load_tokens(out / "tone_440hz_16k_cont.tokens.npz")
    assert 105 <= cont.tokens.shape[0] <= 109  # 104 prompt frames + 1..5 new ones
    assert int(cont.tokens[:, 0].max()) < 64 and int(cont.tokens[:, 1].max()) < 64


def test_generate_wav_from_text(trained, tmp_path):
    import soundfile as sf

    out = tmp_path / "gen"
    assert main(["generate", "--checkpoint", str(trained), "--seconds", "0.1", "--out", str(out), "--text", "a tone",
                 "--steps", "2", "--seed", "0"]) == 0
    frames = load_tokens(out / "text_00.tokens.npz").tokens.shape[0]
    wave, rate = sf.read(out / "text_00.wav")
    assert rate == 16000 and wave.ndim == 1 and len(wave) == frames * 320  # 320 samples per frame at 50 frames/s


def test_decode_token_files_to_wav(tmp_path, capsys):
    import soundfile as sf

    tokens = tmp_path / "tokens"
    assert main(["encode", str(EXAMPLES / "tone_440hz_16k.wav"), "--codec", "tiny-random", "--out", str(tokens)]) == 0
    wavs = tmp_path / "wav"
    args = ["decode", str(tokens), "--codec", "tiny-random", "--steps", "2", "--seed", "0", "--out", str(wavs)]
    assert main(args) == 0
    wave, rate = sf.read(wavs / "tone_440hz_16k.wav")
    assert rate == 16000 and len(wave) == 32000  # the original length, not the 104 frames' 33280 samples
    assert "wrote 1 wav files" in capsys.readouterr().out
    assert main([*args, "--token-rate", "50"]) == 2  # the wav is there: refused before the codec loads
    assert "already exist" in capsys.readouterr().err
    assert main([*args, "--token-rate", "50", "--overwrite"]) == 2
    assert "holds tokens of codec 'tiny-r100'" in capsys.readouterr().err
    assert main(["decode", str(tmp_path / "none"), "--codec", "tiny-random", "--out", str(wavs)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["decode", str(wavs), "--codec", "tiny-random", "--out", str(wavs)]) == 2
    assert "holds no token files" in capsys.readouterr().err


def test_generate_errors(trained, tmp_path, capsys):
    base = ["generate", "--checkpoint", str(trained), "--out", str(tmp_path)]
    assert main([*base, "--text", "x", "--audio", "y.wav"]) == 2
    assert "not both and not neither" in capsys.readouterr().err
    assert main([*base, "--audio", str(tmp_path / "missing.wav")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", "--checkpoint", str(EXAMPLES), "--out", str(tmp_path), "--text", "x"]) == 2
    assert "semantilm_config.json" in capsys.readouterr().err


def test_tokenize_synthetic_then_train_on_the_tokens(tmp_path, capsys):
    from semantilm.data.token_dataset import load_token_dataset, token_dataset_info

    out = tmp_path / "tokens"
    args = ["tokenize", "--dataset", "synthetic", "--synthetic-examples", "6", "--synthetic-seconds", "0.3",
            "--caption-column", "caption", "--codec", "tiny-random", "--shard-size", "4", "--out", str(out)]
    assert main(args) == 0
    assert "wrote 6 token rows" in capsys.readouterr().out
    data = load_token_dataset(out)
    assert {"id", "semantic_ids", "acoustic_ids", "num_frames", "duration", "caption"} <= set(data.column_names)
    assert data[0]["num_frames"] == 16 and data[0]["caption"] and list(data["id"]) == [str(i) for i in range(6)]
    assert token_dataset_info(out)["codec"]["variant"] == "tiny-r100"
    assert sorted(p.name for p in (out / "train").iterdir()) == ["shard-00000.parquet", "shard-00001.parquet"]
    run = tmp_path / "run"
    assert main(train_args(run, f"data.dataset={out}", "train.max_steps=1", "train.save_steps=1")) == 0
    assert not (run / "tokens").exists()  # tokens were used as they are


def test_tokenize_an_audio_folder_with_caption_files(tmp_path, capsys):
    import shutil

    from semantilm.data.token_dataset import load_token_dataset

    folder = tmp_path / "audio"
    shutil.copytree(EXAMPLES, folder)
    (folder / "tone_440hz_16k.txt").write_text("a 440 Hz tone\n")
    out = tmp_path / "tokens"
    assert main(["tokenize", "--dataset", str(folder), "--caption-column", "caption", "--codec", "tiny-random",
                 "--out", str(out)]) == 0
    data = load_token_dataset(out)
    assert list(data["caption"]) == ["", "a 440 Hz tone"] and list(data["num_frames"]) == [80, 104]  # 1.5 s, 2 s


def test_tokenize_errors(tmp_path, capsys):
    assert main(["tokenize", "--dataset", str(tmp_path / "none"), "--codec", "tiny-random", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    args = ["tokenize", "--dataset", "synthetic", "--synthetic-examples", "2", "--codec", "tiny-random", "--out", str(tmp_path)]
    assert main([*args, "--caption-column", "text"]) == 2
    assert "caption_column 'text' is not a column of 'synthetic'" in capsys.readouterr().err


def test_push_checks_the_folder_then_uploads(trained, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    uploaded = []

    class FakeApi:  # no test touches the network
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            pass

        def upload_folder(self, folder_path, repo_id, **kwargs):
            uploaded.append((folder_path, repo_id, kwargs["ignore_patterns"]))
            return "https://hub/commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert main(["push", str(trained / "checkpoint-3"), "me/tiny"]) == 0
    assert uploaded[0][:2] == (str(trained / "checkpoint-3"), "me/tiny") and "optimizer.pt" in uploaded[0][2]
    assert main(["push", str(EXAMPLES), "me/tiny"]) == 2
    assert "lacks the token layout" in capsys.readouterr().err and len(uploaded) == 1


def test_eval_codec_on_a_folder_writes_table_and_json(tmp_path, capsys, monkeypatch):
    import json

    import codec.eval.metrics

    # an optional metric whose package is missing is reported, not fatal
    monkeypatch.setattr(codec.eval.metrics, "metric_unavailable",
                        lambda name: "the 'visqol-python' package is not installed" if name == "visqol" else None)
    out = tmp_path / "eval" / "codec.json"
    args = ["eval-codec", str(EXAMPLES), "--codec", "tiny-random", "--steps", "2", "--seed", "0", "--per-clip",
            "--out", str(out), "--metrics", "mel", "mrstft", "si_sdr", "visqol"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| tiny-r100 | 0.60 | 2 | 3.5 |" in printed and "tone_440hz_16k.wav" in printed
    assert "ViSQOL: not measured (the 'visqol-python' package is not installed)" in printed
    data = json.loads(out.read_text())
    assert data["bitrate"] == 600.0 and data["metrics"] == ["mel", "mrstft", "si_sdr"] and len(data["clips"]) == 2
    assert data["settings"]["steps"] == 2 and data["settings"]["seed"] == 0


def test_eval_lm_splits_semantic_and_acoustic(trained, tmp_path, capsys):
    import json

    out = tmp_path / "lm.json"
    assert main(["eval-lm", "--checkpoint", str(trained), "--dataset", str(trained / "tokens"),
                 "--max-examples", "4",
                 "--out", str(out)]) == 0
    assert "| semantic |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["num_examples"] == 4 and data["counts"]["semantic"] == data["counts"]["acoustic"] > 0
    assert data["counts"]["all"] == sum(data["counts"][k] for k in ("semantic", "acoustic", "other"))
    assert all(v > 0 for v in data["perplexities"].values())


def test_eval_errors(trained, tmp_path, capsys):
    assert main(["eval-codec", "--out", str(tmp_path / "x.json")]) == 2
    assert "not both and not neither" in capsys.readouterr().err
    assert main(["eval-codec", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval-lm", "--checkpoint", str(trained), "--dataset", "synthetic", "--out", str(tmp_path / "x")]) == 2
    assert "holds no tokens" in capsys.readouterr().err
    assert main(["eval-lm", "--checkpoint", str(trained), "--dataset", "./nowhere", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["info", "encode", "decode", "tokenize", "train", "generate", "push", "eval-codec",
                                     "eval-lm", "export-codec"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "exit codes:" in out


def test_building_the_parser_imports_nothing_heavy():
    """``semantilm --help`` stays instant: the parser needs no torch, numpy, datasets or transformers."""
    import subprocess
    import sys

    code = ("import sys; from semantilm.cli.main import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'datasets', 'transformers'}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
