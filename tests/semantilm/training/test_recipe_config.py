"""Recipe YAML -> dataclasses: every shipped config loads; unknown keys, wrong types and bad
overrides fail with messages that name the dotted key."""

from pathlib import Path

import pytest
import yaml

from semantilm.training.recipe_config import (
    ConfigError,
    RecipeConfig,
    apply_overrides,
    from_dict,
    load_config,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[3]
# The LM recipes' configs; configs/recipes/codec/ holds the codec recipe's own schema
# (tested in tests/codec/test_codec_recipe.py).
RECIPE_CONFIGS = sorted(p for p in (ROOT / "configs" / "recipes").rglob("*.yaml")
                        if p.relative_to(ROOT / "configs" / "recipes").parts[0] != "codec")
TINY = ROOT / "configs" / "recipes" / "text_to_audio" / "tiny_cpu.yaml"


@pytest.mark.parametrize("path", RECIPE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_recipe_configs_load(path):
    config = load_config(RecipeConfig, path)
    assert config.task == path.parent.name
    assert (ROOT / config.model.size).is_file() if config.model.size else config.model.pretrained
    assert from_dict(RecipeConfig, to_dict(config)) == config  # round trip


def test_every_shipped_recipe_config_is_checked():
    from codec.training.recipe import load_codec_recipe_config

    codec_configs = sorted((ROOT / "configs" / "recipes" / "codec").rglob("*.yaml"))
    assert codec_configs
    for path in codec_configs:
        load_codec_recipe_config(path)
    assert len(RECIPE_CONFIGS) + len(codec_configs) == len(list((ROOT / "configs" / "recipes").rglob("*.yaml")))


def test_accelerate_configs():
    expected = {"cpu": 2, "1gpu": 1, "8gpu": 8, "multinode": 16}
    for name, processes in expected.items():
        data = yaml.safe_load((ROOT / "configs" / "accelerate" / f"{name}.yaml").read_text())
        assert data["num_processes"] == processes, name
    assert yaml.safe_load((ROOT / "configs" / "accelerate" / "multinode.yaml").read_text())["num_machines"] == 2


def test_nested_sections_are_typed_dataclasses():
    from semantilm.models.lora import LoraSettings
    from semantilm.training.trainer import TrainConfig

    config = load_config(RecipeConfig, ROOT / "configs" / "recipes" / "continuation" / "lora_gpu.yaml")
    assert isinstance(config.train, TrainConfig) and isinstance(config.model.lora, LoraSettings)
    assert config.model.lora.r == 64 and config.train.learning_rate == pytest.approx(2e-4)
    assert config.data.caption_column is None


def write(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_keys_name_the_dotted_key_and_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'train\.lerning_rate' \(did you mean 'learning_rate'\?\)"):
        load_config(RecipeConfig, write(tmp_path, {"task": "continuation", "train": {"lerning_rate": 1.0}}))
    with pytest.raises(ConfigError, match=r"unknown key 'model\.lora\.rank'.*allowed keys under 'model\.lora': \[.*'r'"):
        from_dict(RecipeConfig, {"task": "continuation", "model": {"size": None, "pretrained": "x", "lora": {"rank": 4}}})
    with pytest.raises(ConfigError, match=r"unknown key 'optimizer'; allowed keys at the top level: \["):
        from_dict(RecipeConfig, {"task": "continuation", "optimizer": "adam"})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"max_steps": "ten"}}, r"key 'train\.max_steps': value 'ten' \(str\) is not of the expected type int"),
        ({"train": {"max_steps": True}}, r"key 'train\.max_steps': value True \(bool\)"),
        ({"train": {"learning_rate": "3e-4"}}, r"key 'train\.learning_rate': value '3e-4' \(str\) .* float"),
        ({"resume": "yes"}, r"key 'resume': value 'yes' \(str\) is not of the expected type bool"),
        ({"model": {"pattern": "zigzag"}}, r"key 'model\.pattern': value 'zigzag' is not one of \['interleave', 'semantic_first'\]"),
        ({"data": {"max_examples": [1]}}, r"key 'data\.max_examples': value \[1\] \(list\)"),
        ({"codec": "tiny-random"}, r"key 'codec': expected a mapping of CodecSection keys"),
        ({"codec": {"token_rate": 75}}, r"codec: token_rate must be 25, 50 or 100"),
        ({"train": {"max_steps": 0}}, r"train: max_steps must be a positive int"),
        ({"model": {"lora": {"r": 4}}}, r"model: lora needs a pretrained model"),
    ],
)
def test_wrong_types_and_values(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(RecipeConfig, {"task": "continuation", **data})


def test_ints_are_floats_and_missing_task():
    config = from_dict(RecipeConfig, {"task": "continuation", "train": {"learning_rate": 1}})
    assert isinstance(config.train.learning_rate, float)
    with pytest.raises(ConfigError, match=r"missing required key\(s\) \['task'\]"):
        from_dict(RecipeConfig, {})
    with pytest.raises(ConfigError, match="text_to_audio needs data.caption_column"):
        from_dict(RecipeConfig, {"task": "text_to_audio", "data": {"caption_column": None}})


def test_overrides(tmp_path):
    config = load_config(
        RecipeConfig, TINY,
        ["train.max_steps=7", "train.output_dir=/x/y", "data.max_examples=null", "model.text_vocab_size=32",
         "codec.name=tiny-random"],
    )
    assert config.train.max_steps == 7 and config.train.output_dir == "/x/y" and config.model.text_vocab_size == 32
    data = apply_overrides({"model": {"size": "a"}}, ["model.lora.r=4", "model.lora.target_modules=[q_proj, v_proj]"])
    assert data == {"model": {"size": "a", "lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]}}}
    with pytest.raises(ConfigError, match=r"override 'train\.max_steps' must look like key\.subkey=value"):
        load_config(RecipeConfig, TINY, ["train.max_steps"])
    with pytest.raises(ConfigError, match=r"'train\.max_steps' is a value, not a section"):
        load_config(RecipeConfig, TINY, ["train.max_steps.x=1"])
    with pytest.raises(ConfigError, match=r"tiny_cpu\.yaml: unknown key 'train\.max_stepz'"):
        load_config(RecipeConfig, TINY, ["train.max_stepz=3"])


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(RecipeConfig, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(RecipeConfig, bad)


def test_report_to_auto_uses_tensorboard_only_when_installed(monkeypatch):
    import importlib.util

    from semantilm.training.trainer import resolve_report_to

    assert resolve_report_to("none") == [] and resolve_report_to("tensorboard,wandb") == ["tensorboard", "wandb"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert resolve_report_to("auto") == []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "tensorboard" else None)
    assert resolve_report_to("auto") == ["tensorboard"]


def test_repeated_override_flags_accumulate():
    """`--override a=1 --override b=2` and `--override a=1 b=2` both keep every override."""
    from semantilm.cli.main import build_parser
    from semantilm.training.launch import recipe_parser

    for argv in (["--override", "train.max_steps=3", "--override", "train.bf16=true"],
                 ["--override", "train.max_steps=3", "train.bf16=true"]):
        args = recipe_parser("text_to_audio", "t").parse_args(["--config", "c.yaml", *argv])
        assert args.override == ["train.max_steps=3", "train.bf16=true"]
        args = build_parser().parse_args(["train", "--config", "c.yaml", *argv])
        assert args.override == ["train.max_steps=3", "train.bf16=true"]
