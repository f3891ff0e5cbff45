"""Compact export (fp16) and the embedded ``tiny`` codec: round trip, size, error when absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codec import checkpoints
from codec.model import SemantiCodec
from codec.training.export import export_codec, summarize_stage
from codec.training.recipe import build_codec, load_codec_recipe_config

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random codec with the sizes of the tiny trained codec, saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("src") / "codec"
    codec = build_codec(load_codec_recipe_config(ROOT / "configs/recipes/codec/tiny_trained/vae.yaml").codec)
    codec.save_pretrained(folder)
    return folder, codec.state_dict()


def test_export_round_trip_size_and_embedded_name(source, tmp_path, monkeypatch):
    folder, state = source
    out = tmp_path / "tiny"
    export_codec(folder, out, name="tiny", max_mb=5)
    assert sorted(p.name for p in out.iterdir()) == ["TRAINING.md", "config.json", "model.safetensors"]
    assert (out / "model.safetensors").stat().st_size < 5e6
    _, stored = checkpoints.load_native(out)
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    monkeypatch.setitem(checkpoints.EMBEDDED_CODECS, "tiny", out)
    for loaded in (SemantiCodec.from_pretrained("tiny"), SemantiCodec.from_pretrained("tiny", token_rate=50)):
        assert loaded.variant == "tiny" and loaded.config.token_rate == 50 and loaded.decoder is not None
        for k, v in loaded.state_dict().items():
            assert v.dtype == state[k].dtype, k  # upcast to float32 on loading
            assert torch.equal(v, state[k].half().to(v.dtype)), k  # = the source within fp16 rounding
            torch.testing.assert_close(v, state[k], rtol=1e-3, atol=1e-4)
    notes = (out / "TRAINING.md").read_text()
    assert "# Codec `tiny`" in notes and "float16" in notes and "not recorded" in notes


def test_missing_embedded_codec_names_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setitem(checkpoints.EMBEDDED_CODECS, "tiny", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"recipes/codec/train_tiny_codec\.sh.*tiny-random"):
        SemantiCodec.from_pretrained("tiny")
    assert SemantiCodec.from_pretrained("tiny-random", token_rate=50).variant == "tiny-r50"  # unchanged


def test_training_notes_summarise_stage_outputs(source, tmp_path):
    folder, _ = source
    voc = tmp_path / "runs" / "vocoder"
    voc.mkdir(parents=True)
    (voc / "recipe.yaml").write_text("task: codec\nstage: vocoder\n")
    (voc / "history.jsonl").write_text("".join(
        json.dumps({"step": s, "wall_s": 10.0 * s, "loss": float(s), "mel": 1.0, "lr": 1e-3}) + "\n" for s in range(1, 101))
        + '{"step": 101, "wall')  # a line cut off by a killed run is skipped
    bare = tmp_path / "runs" / "vae"  # a stage dir without history.jsonl: the step of its newest checkpoint
    (bare / "checkpoints" / "checkpoint-300").mkdir(parents=True)
    (bare / "checkpoints" / "checkpoint-300" / "checkpoint_complete").write_text("300\n")
    (bare / "recipe.yaml").write_text("stage: vae\n")
    s = summarize_stage(voc)
    assert (s.stage, s.steps, s.wall_s) == ("vocoder", 100, 1000.0)
    assert s.losses == {"loss": pytest.approx(75.5), "mel": 1.0}  # mean of the last 50 steps, lr left out
    s = summarize_stage(bare)
    assert (s.stage, s.steps, s.wall_s, s.losses, s.source) == ("vae", 300, None, {}, "checkpoints")
    out = tmp_path / "exp"
    export_codec(folder, out, stages=[voc, bare], command="bash x.sh")
    notes = (out / "TRAINING.md").read_text()
    assert "| vocoder |" in notes and "| 100 | 16:40 | loss 75.5, mel 1 |" in notes
    assert "| vae |" in notes and "| 300 | not recorded | not recorded (from checkpoints) |" in notes
    assert "    bash x.sh" in notes and "Total wall time" not in notes
    with pytest.raises(FileNotFoundError, match="run that stage first"):
        summarize_stage(tmp_path / "runs" / "semantic")


def test_embedded_files_are_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["codec"]
    names = {checkpoints.CONFIG_NAME, checkpoints.WEIGHTS_NAME, checkpoints.TRAINING_NOTES}
    assert {f"pretrained/tiny/{n}" for n in names} <= set(data)
    assert checkpoints.EMBEDDED_CODECS["tiny"] == ROOT / "codec" / "pretrained" / "tiny"


def test_export_takes_the_vocoder_of_a_vocoder_stage(source, tmp_path):
    """The vocoder trains on its own: the export swaps it into the decoder stage's codec."""
    folder, state = source
    other = build_codec(load_codec_recipe_config(ROOT / "configs/recipes/codec/tiny_trained/vae.yaml").codec)
    with torch.no_grad():
        for p in other.decoder.vocoder.parameters():
            p.add_(1.0)
    other.save_pretrained(tmp_path / "voc" / "codec")
    out = export_codec(folder, tmp_path / "out", dtype="float32", vocoder_from=tmp_path / "voc")
    loaded = SemantiCodec.from_pretrained(out).state_dict()
    swapped = other.state_dict()
    for k, v in loaded.items():
        assert torch.equal(v, (swapped if k.startswith("decoder.vocoder.") else state)[k]), k


def test_export_takes_a_vocoder_of_other_sizes_with_its_config(source, tmp_path):
    """A vocoder stage may use other vocoder sizes than the decoder stage: the export adopts them."""
    folder, state = source
    sizes = ["codec.tiny_sizes.vocoder_upsample_rates=[160]", "codec.tiny_sizes.vocoder_upsample_kernels=[320]",
             "codec.tiny_sizes.vocoder_initial_channels=16"]
    other = build_codec(load_codec_recipe_config(ROOT / "configs/recipes/codec/tiny_trained/vae.yaml", sizes).codec)
    other.save_pretrained(tmp_path / "voc" / "codec")
    out = export_codec(folder, tmp_path / "out", dtype="float32", vocoder_from=tmp_path / "voc")
    loaded = SemantiCodec.from_pretrained(out)
    assert loaded.config.vocoder_upsample_rates == (160,) and loaded.config.vocoder_initial_channels == 16
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, (other.state_dict() if k.startswith("decoder.vocoder.") else state)[k]), k
    mel = torch.randn(1, 5, loaded.config.vae_mel_bins)
    assert loaded.decoder.vocoder(mel).shape[-1] >= 5 * 160


def test_export_sets_the_variants_guidance_scale(source, tmp_path):
    folder, state = source
    export_codec(folder, tmp_path / "out", dtype="float32", cfg_scale=1)
    loaded = SemantiCodec.from_pretrained(tmp_path / "out")
    assert loaded.config.cfg_scale == 1.0
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(ValueError, match="cfg_scale must be >= 1"):
        export_codec(folder, tmp_path / "bad", cfg_scale=0.5)
