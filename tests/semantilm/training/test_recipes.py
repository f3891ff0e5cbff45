"""The training recipes on the tiny CPU configs: in-process runs (resume, LoRA), a 2-process
``accelerate launch`` (DDP over gloo), and hub-format checkpoints (local folders only: no test
touches the network)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from semantilm.models.hub import (
    CODEC_REFERENCE_FILE,
    CodecReference,
    check_checkpoint_folder,
    load_codec_reference,
    push_to_hub,
    resolve_checkpoint,
)
from semantilm.models.lm import load_lm
from semantilm.training.recipe_config import RecipeConfig, load_config
from semantilm.training.recipes import run_recipe

ROOT = Path(__file__).resolve().parents[3]
TINY_LM = ROOT / "configs" / "lm" / "tiny.yaml"


def tiny_config(task, out, *overrides):
    return load_config(
        RecipeConfig,
        ROOT / "configs" / "recipes" / task / "tiny_cpu.yaml",
        [f"train.output_dir={out}", f"model.size={TINY_LM}", "data.synthetic_examples=12", "data.shard_size=8",
         "train.disable_tqdm=true", "train.report_to=none", *overrides],
    )


def test_continuation_recipe_runs_and_resumes(tmp_path):
    out = tmp_path / "run"
    first = run_recipe(tiny_config("continuation", out, "train.max_steps=4", "train.save_steps=4"), task="continuation")
    assert first.global_step == 4 and first.num_examples == 12
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4"]
    shards = sorted(p.name for p in (out / "tokens" / "train").glob("shard-*.parquet"))
    assert shards == ["shard-00000.parquet", "shard-00001.parquet"]
    text_model = (out / "text.model").read_bytes()
    # Every checkpoint is a hub-format folder that knows its codec.
    for folder in (out, out / "checkpoint-4"):
        check_checkpoint_folder(folder)
        assert load_codec_reference(folder) == CodecReference("tiny-random", 100, 16384, "tiny-r100")
    loaded = load_lm(out)
    assert loaded.layout.codec_variant == "tiny-r100" and loaded.layout.semantic_vocab_size == 64

    # Rerunning with more steps resumes from checkpoint-4 and reuses tokens and tokenizer.
    second = run_recipe(tiny_config("continuation", out, "train.max_steps=6", "train.save_steps=6"))
    assert second.global_step == 6
    assert [s for s, _ in second.losses][-2:] == [5, 6]
    assert (out / "text.model").read_bytes() == text_model
    assert sorted(p.name for p in (out / "tokens" / "train").glob("shard-*.parquet")) == shards


def test_text_to_audio_recipe_with_lora_on_a_pretrained_lm(tmp_path, hf_pretrained_dir):
    out = tmp_path / "lora"
    config = tiny_config(
        "text_to_audio", out, "model.size=null", f"model.pretrained={hf_pretrained_dir}", "model.lora.r=2",
        "train.max_steps=2", "train.save_steps=2", "data.synthetic_examples=4",
    )
    result = run_recipe(config, task="text_to_audio")
    assert result.global_step == 2
    assert (out / "adapter_config.json").is_file() and (out / "checkpoint-2" / "adapter_config.json").is_file()
    loaded = load_lm(out)
    from transformers import AutoConfig

    assert loaded.layout.text_vocab_size == AutoConfig.from_pretrained(hf_pretrained_dir).vocab_size
    ids = torch.tensor([loaded.tokenizer.text_prompt("a rising sweep")])
    with torch.no_grad():
        assert loaded.model(ids).logits.shape[-1] == loaded.layout.vocab_size


def test_text_to_audio_on_a_saved_corpus_with_other_column_names(tmp_path):
    from codec.data.synthetic import SyntheticSoundConfig, synthetic_dataset

    corpus = synthetic_dataset(SyntheticSoundConfig(num_examples=3, seconds=0.2))
    corpus.rename_columns({"audio": "wav", "caption": "text"}).save_to_disk(str(tmp_path / "corpus"))
    out = tmp_path / "run"
    config = tiny_config(
        "text_to_audio", out, f"data.dataset={tmp_path / 'corpus'}", "data.audio_column=wav",
        "data.caption_column=text", "train.max_steps=1", "train.save_steps=1",
    )
    assert run_recipe(config).num_examples == 3
    assert load_lm(out).tokenizer.encode_text("a")  # sentencepiece trained on the "text" captions


def test_recipe_errors(tmp_path):
    with pytest.raises(ValueError, match="this is the text_to_audio recipe but the config says task: continuation"):
        run_recipe(tiny_config("continuation", tmp_path), task="text_to_audio")
    with pytest.raises(ValueError, match="neither a folder of audio files nor a folder saved"):
        run_recipe(tiny_config("continuation", tmp_path / "x", f"data.dataset={tmp_path / 'missing'}"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_accelerate_launch(tmp_path):
    """``accelerate launch`` with 2 CPU processes: each process trains on its own half of every
    step's examples, the loss falls, and one checkpoint (with layout and codec) is written."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / "cpu.yaml"), "--main_process_port", str(free_port()),
        str(ROOT / "recipes" / "text_to_audio" / "train.py"),
        "--config", str(ROOT / "configs" / "recipes" / "text_to_audio" / "tiny_cpu.yaml"),
        "--override", f"train.output_dir={out}", f"model.size={TINY_LM}", "train.max_steps=8", "train.save_steps=8",
        "train.disable_tqdm=true", "train.report_to=none", "log_data_order=true",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("text_to_audio: 8 steps on 32 examples") == 1  # printed by the main process only

    batches = [
        [json.loads(line) for line in (out / "data_order" / f"rank-{k}.jsonl").read_text().splitlines()]
        for k in (0, 1)
    ]
    # 32 examples, 4 per process and step: steps 1-4 are one epoch, split between the processes.
    epoch = [{i for batch in batches[k][:4] for i in batch} for k in (0, 1)]
    assert len(epoch[0]) == len(epoch[1]) == 16
    assert not epoch[0] & epoch[1] and epoch[0] | epoch[1] == set(range(32))

    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-8"]
    ckpt = out / "checkpoint-8"
    check_checkpoint_folder(ckpt)
    assert (ckpt / CODEC_REFERENCE_FILE).is_file()
    history = json.loads((ckpt / "trainer_state.json").read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert len(losses) == 8 and sum(losses[-2:]) < sum(losses[:2]) - 0.2, losses


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="Accelerate's FSDP needs GPUs; this test needs two")
def test_fsdp_config_trains_and_resumes_on_two_gpus(tmp_path):
    """``configs/accelerate/fsdp.yaml`` on 2 GPUs: 4 steps with a sharded checkpoint-4, then the same
    command with 6 steps resumes from it; the final folder is a plain checkpoint that loads."""
    out = tmp_path / "fsdp"

    def launch(steps: int) -> subprocess.CompletedProcess:
        cmd = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(ROOT / "configs" / "accelerate" / "fsdp.yaml"), "--num_processes", "2",
            "--main_process_port", str(free_port()),
            str(ROOT / "recipes" / "text_to_audio" / "train.py"),
            "--config", str(ROOT / "configs" / "recipes" / "text_to_audio" / "tiny_cpu.yaml"),
            "--override", f"train.output_dir={out}", f"model.size={TINY_LM}", f"train.max_steps={steps}",
            "train.save_steps=4", "train.use_cpu=false", "train.bf16=true", "train.disable_tqdm=true",
            "train.report_to=none",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)

    first = launch(4)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-4").is_dir()
    second = launch(6)
    assert second.returncode == 0, second.stderr[-3000:]
    history = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["global_step"]
    assert history == 4 and "text_to_audio: 6 steps" in second.stdout
    assert load_lm(out).layout.codec_variant == "tiny-r100"


# ----- hub format (local folders; huggingface_hub calls are replaced) -----------------------
@pytest.fixture
def saved_lm(tmp_path, sp_model_path, fake_codec):
    from semantilm.models.hub import save_codec_reference
    from semantilm.models.lm import LMConfig, build_lm, save_lm
    from semantilm.tokens.tokenizer import AudioTextTokenizer

    tok = AudioTextTokenizer.from_sentencepiece(sp_model_path, fake_codec)
    model = build_lm(tok.layout, LMConfig(hidden_size=16, num_attention_heads=2), seed=0)
    folder = save_lm(model, tok.layout, tmp_path / "lm", tokenizer=tok)
    save_codec_reference(folder, CodecReference("tiny-random", 100, 16384, fake_codec.variant))
    return folder


def test_push_to_hub_uploads_the_checked_folder(saved_lm, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs["exist_ok"]))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls.append(("upload_folder", folder_path, repo_id))
            return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    url = push_to_hub(saved_lm, "me/tiny-audio-lm", token="t")
    assert url == "https://hub/me/tiny-audio-lm/commit/1"
    assert calls == [("init", "t"), ("create_repo", "me/tiny-audio-lm", True), ("upload_folder", str(saved_lm), "me/tiny-audio-lm")]
    (saved_lm / "semantilm_config.json").unlink()
    with pytest.raises(ValueError, match="lacks the token layout semantilm_config.json"):
        push_to_hub(saved_lm, "me/x")


def test_load_lm_from_a_hub_id_reads_the_snapshot(saved_lm, tmp_path, monkeypatch, fake_codec):
    import huggingface_hub

    asked = []

    def fake_snapshot(repo_id, **kwargs):
        asked.append(repo_id)
        return str(saved_lm)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.chdir(tmp_path)
    loaded = load_lm("me/tiny-audio-lm", codec=fake_codec)
    assert asked == ["me/tiny-audio-lm"] and loaded.tokenizer is not None
    assert load_codec_reference(resolve_checkpoint("me/tiny-audio-lm")).name == "tiny-random"
    # Local paths never reach the hub; a missing one is reported as missing.
    assert resolve_checkpoint(saved_lm) == saved_lm
    for missing in ("no_lm", str(tmp_path / "nope")):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            resolve_checkpoint(missing)
    assert asked == ["me/tiny-audio-lm"] * 2


def test_recipe_tokenises_with_the_codec_it_is_given(tmp_path, monkeypatch):
    from semantilm import codec_api

    codec = codec_api.load_codec("tiny-random", device="cpu", decoder=False)

    def load_again(*args, **kwargs):
        raise AssertionError("run_recipe loaded the codec although it was given one")

    monkeypatch.setattr(codec_api, "load_codec", load_again)
    out = tmp_path / "run"
    result = run_recipe(tiny_config("continuation", out, "train.max_steps=1", "train.save_steps=1"), codec=codec)
    assert result.global_step == 1 and result.num_examples == 12
    assert load_codec_reference(out).variant == codec.variant
