"""The codec training recipe: Accelerate loop, checkpoints, exact resume, config errors (tiny, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codec.model import SemantiCodec
from codec.training.history import read_history
from codec.training.recipe import build_codec, load_codec_recipe_config, run_codec_recipe
from plumbing.config_file import ConfigError

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "recipes" / "codec" / "tiny_cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(out: Path, *overrides: str):
    return load_codec_recipe_config(CONFIG, [f"train.output_dir={out}", "data.synthetic_examples=4",
                                             "data.synthetic_seconds=1.2", *overrides])


def trained(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(("acoustic.", "decoder.unet."))}


def test_loop_writes_checkpoint_and_loadable_codec(tmp_path):
    cfg = config(tmp_path, "train.max_steps=2", "train.save_steps=1", "train.gradient_accumulation_steps=2")
    initial = build_codec(cfg.codec).state_dict()
    result = run_codec_recipe(cfg)
    assert result.global_step == 2 and [s for s, _ in result.history] == [1, 2]
    assert all(torch.isfinite(torch.tensor(logs["loss"])) for _, logs in result.history)
    for step in (1, 2):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        assert (folder / "model.safetensors").is_file() and (folder / "optimizer.bin").is_file()
        assert (folder / "codec" / "config.json").is_file()
    loaded = SemantiCodec.from_pretrained(result.codec_dir).state_dict()
    ckpt = SemantiCodec.from_pretrained(tmp_path / "checkpoints" / "checkpoint-2" / "codec").state_dict()
    changed = [k for k, v in trained(loaded).items() if not torch.equal(v, initial[k])]
    assert any(k.startswith("acoustic.lstm") for k in changed) and any(k.startswith("decoder.unet") for k in changed)
    assert not torch.equal(loaded["acoustic.codebook"], initial["acoustic.codebook"])  # EMA moved it
    for k, v in loaded.items():
        assert torch.equal(v, ckpt[k]), k
        if not k.startswith(("acoustic.", "decoder.unet.")):  # AudioMAE, centroids, VAE, vocoder
            assert torch.equal(v, initial[k]), f"frozen {k} changed"


def test_optimizer_sees_only_trainable_parameters(tmp_path):
    cfg = config(tmp_path, "train.max_steps=1")
    run_codec_recipe(cfg)
    opt = torch.load(tmp_path / "checkpoints" / "checkpoint-1" / "optimizer.bin", weights_only=False)
    from codec.training.losses import CodecTrainingStep

    step = CodecTrainingStep(build_codec(cfg.codec))
    n_trainable = len(list(step.trainable_parameters()))
    assert len(opt["state"]) == n_trainable < len(list(step.parameters()))


def test_mixed_precision_on_cpu_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision"):
        run_codec_recipe(config(tmp_path, "train.mixed_precision=bf16", "train.max_steps=1"))


def test_resume_equals_uninterrupted(tmp_path):
    straight = run_codec_recipe(config(tmp_path / "a", "train.max_steps=3", "train.save_steps=100"))
    # 4 clips, batch 2: 2 steps per epoch. Stopping after step 1 makes the resumed run skip a
    # batch of epoch 0 and then cross into epoch 1.
    first = run_codec_recipe(config(tmp_path / "b", "train.max_steps=1", "train.save_steps=100"))
    assert first.global_step == 1
    with (tmp_path / "b" / "history.jsonl").open("a") as f:  # a record past the checkpoint (killed run)
        f.write('{"step": 2, "wall_s": 99.0, "loss": -1.0}\n')
    resumed = run_codec_recipe(config(tmp_path / "b", "train.max_steps=3", "train.save_steps=100"))
    history = read_history(tmp_path / "b")
    assert [r["step"] for r in history] == [1, 2, 3] and history[1]["loss"] != -1.0
    assert [r["loss"] for r in history] == [r["loss"] for r in read_history(tmp_path / "a")]
    assert resumed.global_step == 3 and [s for s, _ in resumed.history] == [2, 3]
    assert [logs for _, logs in resumed.history] == [logs for _, logs in straight.history[1:]]  # same batches, noise
    a = SemantiCodec.from_pretrained(straight.codec_dir).state_dict()
    b = SemantiCodec.from_pretrained(resumed.codec_dir).state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit-exact: same ops, same order, one thread
    sa = torch.load(tmp_path / "a/checkpoints/checkpoint-3/optimizer.bin", weights_only=False)["state"]
    sb = torch.load(tmp_path / "b/checkpoints/checkpoint-3/optimizer.bin", weights_only=False)["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


@pytest.mark.parametrize("override, key", [
    ("train.bach_size=2", "train.bach_size"),
    ("objective.p_uncond=2.0", "objective"),
    ("train.max_steps=two", "train.max_steps"),
    ("codec.nme=x", "codec.nme"),
    ("train.mixed_precision=fp8", "train.mixed_precision"),
])
def test_config_errors_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config(tmp_path, override)


def test_tiny_config_loads():
    cfg = load_codec_recipe_config(CONFIG)
    assert cfg.codec.name == "tiny-random" and cfg.train.use_cpu and cfg.objective.p_uncond == 0.1


def test_incomplete_checkpoint_is_not_resumed(tmp_path):
    from codec.training.history import CHECKPOINT_DONE, latest_checkpoint

    for step, done in ((2, True), (10, True), (12, False)):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if done:
            (folder / CHECKPOINT_DONE).write_text("")
    assert latest_checkpoint(tmp_path).name == "checkpoint-10"
    assert latest_checkpoint(tmp_path / "none") is None


def test_windows_from_a_saved_dataset(tmp_path):
    import numpy as np
    from datasets import Dataset

    from codec.training.recipe import CodecDataSection, build_windows

    rows = [{"sound": {"array": np.full(n, 0.1, np.float32), "sampling_rate": 8000}} for n in (4000, 16000, 800)]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    windows = build_windows(CodecDataSection(dataset=str(tmp_path / "ds"), audio_column="sound"),
                            window_samples=16000, min_samples=400, sample_rate=16000, seed=3)
    assert len(windows) == 3 and sorted(windows.order(0)) == [0, 1, 2]
    lengths = [windows.window(0, i)[1] for i in range(3)]
    assert lengths == [8000, 16000, 1600]  # resampled 8 kHz -> 16 kHz; the long clip is cropped
    wave, _ = windows.window(0, 1)
    assert torch.equal(wave, windows.window(0, 1)[0]) and wave.shape == (16000,)
    with pytest.raises(ValueError, match="audio_column"):
        build_windows(CodecDataSection(dataset=str(tmp_path / "ds")), 16000, 400, 16000, 0)


def test_partial_windows_cut_a_share_short_and_keep_the_rest():
    from codec.training.windows import ClipWindows

    clips = [torch.arange(20000, dtype=torch.float32) + 0.5 * i for i in range(200)]
    full = ClipWindows(clips, 16000, 400, seed=5)
    cut = ClipWindows(clips, 16000, 400, seed=5, partial=0.5)
    assert full.order(2) == cut.order(2)
    short = 0
    for i in range(200):
        wave, n = cut.window(2, i)
        assert wave.shape == (16000,) and 400 <= n <= 16000
        assert not wave[n:].any()  # zero past the valid samples
        assert torch.equal(wave[1:n] - wave[:n - 1], torch.ones(n - 1))  # one contiguous piece of the clip
        if n < 16000:
            short += 1
        else:
            assert torch.equal(wave, full.window(2, i)[0])  # the other windows are unchanged
        assert torch.equal(wave, cut.window(2, i)[0])  # deterministic
    assert 70 <= short <= 130
    assert all(n == 16000 for n in (full.window(2, i)[1] for i in range(200)))
    with pytest.raises(ValueError, match="partial"):
        ClipWindows(clips, 16000, 400, partial=1.5)
