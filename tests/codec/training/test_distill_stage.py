"""The distill stage (codec.training.distill_stage): trains only the student, saves it with the codec,
resumes exactly (also after SIGKILL), and runs on 2 processes (tiny random codec, CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from codec.model import SemantiCodec
from codec.sampling import DecodeSettings
from codec.training.history import CHECKPOINT_DONE
from codec.training.recipe import build_codec, load_codec_recipe_config, run_codec_recipe
from plumbing.config_file import ConfigError

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "configs" / "recipes" / "codec" / "tiny_distill_cpu.yaml"
SMALL = ["data.synthetic_examples=4", "data.synthetic_seconds=1.2", "train.batch_size=2", "train.save_steps=100",
         "train.window_seconds=0.8", "codec.tiny_sizes.vae_block_channels=[8,8,8]", "codec.tiny_sizes.vae_norm_groups=4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(out: Path, *overrides: str):
    return load_codec_recipe_config(CONFIG, [f"train.output_dir={out}", *SMALL, *overrides])


def student_state(folder: Path) -> dict[str, torch.Tensor]:
    return SemantiCodec.from_pretrained(folder).decoder.student.unet.state_dict()


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_distill_trains_only_the_student_and_saves_it_with_the_codec(tmp_path):
    cfg = config(tmp_path / "run", "train.max_steps=2", "train.learning_rate=0.001")
    initial = build_codec(cfg.codec).state_dict()
    result = run_codec_recipe(cfg)
    assert [s for s, _ in result.history] == [1, 2]
    assert all(torch.isfinite(torch.tensor(logs["loss"])) and 1 <= logs["mean_t"] <= 981 for _, logs in result.history)
    codec = SemantiCodec.from_pretrained(result.codec_dir)
    states_equal({k: v for k, v in codec.state_dict().items() if not k.startswith("decoder.student.")},
                 initial)  # the codec (teacher included) is unchanged
    student = codec.decoder.student
    assert student.step_counts == (1, 2, 4) and student.guidance_scale == codec.config.cfg_scale
    teacher = codec.decoder.unet.state_dict()
    assert any(not torch.equal(v, teacher[k]) for k, v in student.unet.state_dict().items())  # it moved
    out = codec.decode(torch.zeros(1, 40, 2, dtype=torch.long), settings=DecodeSettings(sampler="distilled", steps=4))
    assert torch.isfinite(out.audio).all()
    # A later run starts from the teacher again, or continues the codec's student when asked.
    from codec.training.distill_stage import DistillConfig, DistillTrainingStep

    fresh = DistillTrainingStep(SemantiCodec.from_pretrained(result.codec_dir), DistillConfig())
    states_equal(fresh.codec.decoder.student.unet.state_dict(), teacher)
    more = DistillTrainingStep(SemantiCodec.from_pretrained(result.codec_dir), DistillConfig(from_student=True))
    states_equal(more.codec.decoder.student.unet.state_dict(), student.unet.state_dict())
    with pytest.raises(ValueError, match="from_student"):
        DistillTrainingStep(SemantiCodec.from_pretrained(result.codec_dir), DistillConfig(from_student=True,
                                                                                           step_counts=(1, 8)))


def test_resume_equals_uninterrupted(tmp_path):
    straight = run_codec_recipe(config(tmp_path / "a", "train.max_steps=3"))
    assert run_codec_recipe(config(tmp_path / "b", "train.max_steps=1")).global_step == 1
    resumed = run_codec_recipe(config(tmp_path / "b", "train.max_steps=3"))
    assert [s for s, _ in resumed.history] == [2, 3]
    assert [logs for _, logs in resumed.history] == [logs for _, logs in straight.history[1:]]
    states_equal(student_state(straight.codec_dir), student_state(resumed.codec_dir))


def _train_command(out: Path, steps: int, *extra: str, launch: list[str] | None = None) -> list[str]:
    return [*(launch or [sys.executable]), str(ROOT / "recipes" / "codec" / "train.py"), "--config", str(CONFIG),
            "--override", f"train.output_dir={out}", *SMALL, f"train.max_steps={steps}", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def test_a_killed_run_resumes_to_the_same_student(tmp_path):
    """SIGKILL once checkpoint-1 is complete, then the same command: the student of an uninterrupted run."""
    straight = run_codec_recipe(config(tmp_path / "a", "train.max_steps=3", "train.save_steps=1"))
    out = tmp_path / "b"
    args = _train_command(out, 3, "train.save_steps=1")
    proc = subprocess.Popen(args, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = out / "checkpoints" / "checkpoint-1" / CHECKPOINT_DONE
    deadline = time.time() + 240
    while not done.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done.exists() and not (out / "codec").exists()
    rerun = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    states_equal(student_state(straight.codec_dir), student_state(out / "codec"))


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_accelerate_launch(tmp_path):
    """``accelerate launch`` with 2 CPU processes (DDP over gloo): 2 steps, a student saved with the codec."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "configs" / "accelerate" / "cpu.yaml"), "--main_process_port", str(port)]
    out = tmp_path / "ddp"
    proc = subprocess.run(_train_command(out, 2, launch=launch), env=_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoints" / "checkpoint-2" / CHECKPOINT_DONE).exists()
    codec = SemantiCodec.from_pretrained(out / "codec")
    assert codec.decoder.student is not None and codec.decoder.student.step_counts == (1, 2, 4)


@pytest.mark.parametrize("override, key", [("distill.step_counts=[0]", "step_counts"),
                                           ("distill.guidance_scale=0.5", "guidance_scale"),
                                           ("distill.loss=l1", "loss"), ("distill.teacher_steps=1", "teacher_steps")])
def test_distill_section_errors_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        config(tmp_path, override)
