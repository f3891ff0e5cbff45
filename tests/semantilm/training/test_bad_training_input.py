"""Bad training input is refused or reported before training, in words that name it: examples longer
than max_length, an empty training set, captions with characters the tokenizer does not know,
config values of the wrong type, and config files that are not a mapping."""

import dataclasses
import logging

import pytest
from datasets import Dataset

from codec.training.recipe import CodecModelSection
from codec.training.trainer import CodecTrainArgs
from plumbing.config_file import ConfigError
from semantilm.models.lm import LMConfig, build_lm
from semantilm.models.lora import LoraSettings
from semantilm.tokens.tokenizer import CaptionWarning
from semantilm.training.recipe_config import (
    CodecSection,
    DataSection,
    ModelSection,
    RecipeConfig,
    from_dict,
    load_config,
)
from semantilm.training.trainer import TrainConfig, train_lm

CAPTION = "rain falls on a tin roof"


def rows(frames, caption=CAPTION):
    return Dataset.from_dict({
        "semantic_ids": [[i % 16 for i in range(n)] for n in frames],
        "acoustic_ids": [[i % 8 for i in range(n)] for n in frames],
        "num_frames": list(frames),
        "caption": [caption] * len(frames),
    })


def small_model(tok):
    return build_lm(tok.layout, LMConfig(hidden_size=16, num_attention_heads=2), seed=0)


def config(tmp_path, **kwargs):
    return TrainConfig(output_dir=str(tmp_path / "run"), max_steps=1, batch_size=2, save_steps=1000,
                       logging_steps=1000, disable_tqdm=True, report_to="none", **kwargs)


def test_examples_longer_than_max_length_are_counted_then_refused_dropped_or_cut(tmp_path, sp_tok, caplog):
    max_length = len(sp_tok.text_prompt(CAPTION)) + 2 * 4 + 1  # 4 frames fit exactly
    data = rows([2, 4, 6, 9])  # two are too long: by 4 and by 10 ids
    with pytest.raises(ValueError, match=r"2 of 4 examples of the training set are longer than max_length="
                                         rf"{max_length} LM ids \(by up to 10, 7\.0 on average; row 2: .*"
                                         r"'drop' to leave them out or 'cut'.*data\.on_too_long"):
        train_lm(small_model(sp_tok), sp_tok, data, config(tmp_path, max_length=max_length))

    with caplog.at_level(logging.WARNING, logger="semantilm.training.data_checks"):
        dropped = train_lm(small_model(sp_tok), sp_tok, data,
                           config(tmp_path, max_length=max_length, on_too_long="drop"), save_final=False)
    assert len(dropped.train_dataset) == 2 and dropped.state.global_step == 1
    assert "2 of 4 examples" in caplog.text and "left out" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="semantilm.training.data_checks"):
        cut = train_lm(small_model(sp_tok), sp_tok, data, config(tmp_path, max_length=max_length, on_too_long="cut"),
                       save_final=False)
    assert len(cut.train_dataset) == 4 and "by up to 10" in caplog.text and "never learnt" in caplog.text

    # The evaluation set is held to the same rule; packed rows cut nothing, so nothing is checked.
    with pytest.raises(ValueError, match=r"1 of 1 examples of the evaluation set"):
        train_lm(small_model(sp_tok), sp_tok, rows([2]), config(tmp_path, max_length=max_length),
                 eval_dataset=rows([8]))
    packed = train_lm(small_model(sp_tok), sp_tok, data, config(tmp_path, max_length=max_length, packing=True),
                      save_final=False)
    assert len(packed.train_dataset) == 4


def test_on_too_long_in_a_recipe_config():
    config = from_dict(RecipeConfig, {"task": "continuation", "data": {"on_too_long": "drop"}})
    assert config.train.on_too_long == "drop"  # what train_lm reads
    assert from_dict(RecipeConfig, {"task": "continuation"}).train.on_too_long == "error"
    with pytest.raises(ConfigError, match=r"key 'data\.on_too_long': value 'trim' is not one of"):
        from_dict(RecipeConfig, {"task": "continuation", "data": {"on_too_long": "trim"}})
    with pytest.raises(ConfigError, match=r"data\.on_too_long='drop' but train\.on_too_long='cut'"):
        from_dict(RecipeConfig, {"task": "continuation", "data": {"on_too_long": "drop"},
                                 "train": {"on_too_long": "cut"}})


def test_an_empty_training_set_is_named(tmp_path, sp_tok):
    with pytest.raises(ValueError, match=r"train_dataset is empty: the training split has no rows"):
        train_lm(small_model(sp_tok), sp_tok, rows([]), config(tmp_path))
    with pytest.raises(ValueError, match=r"eval_dataset is empty: the evaluation split has no rows"):
        train_lm(small_model(sp_tok), sp_tok, rows([2]), config(tmp_path), eval_dataset=rows([]))


def test_training_captions_with_unknown_characters_are_named(tmp_path, sp_tok):
    data = Dataset.from_dict({**rows([2, 2, 2]).to_dict(), "caption": [CAPTION, "rain at 5 pm", "Café"]})
    with pytest.warns(CaptionWarning, match=r"2 of the captions of the training set hold characters the caption "
                                            r"tokenizer does not know, which become <unk>: 'rain at 5 pm' \('5'\); "
                                            r"'Café' \('é'\)"):
        train_lm(small_model(sp_tok), sp_tok, data, config(tmp_path), save_final=False)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (TrainConfig, {"learning_rate": "3e-4"},
         r"TrainConfig\.learning_rate: value '3e-4' \(str\) is not of the expected type float \(a number in quotes"),
        (TrainConfig, {"batch_size": 2.0}, r"TrainConfig\.batch_size: value 2\.0 \(float\) .* type int"),
        (TrainConfig, {"bf16": "yes"}, r"TrainConfig\.bf16: value 'yes' \(str\) .* type bool"),
        (TrainConfig, {"report_to": None}, r"TrainConfig\.report_to: value None \(null\) .* type str"),
        (TrainConfig, {"save_total_limit": "3"}, r"TrainConfig\.save_total_limit: value '3' \(str\) .* type int"),
        (CodecSection, {"token_rate": "50"}, r"CodecSection\.token_rate: value '50' \(str\)"),
        (DataSection, {"shard_size": "10"}, r"DataSection\.shard_size: value '10' \(str\)"),
        (DataSection, {"eval_fraction": "0.1"}, r"DataSection\.eval_fraction: value '0\.1' \(str\)"),
        (ModelSection, {"text_vocab_size": 64.0}, r"ModelSection\.text_vocab_size: value 64\.0 \(float\)"),
        (LoraSettings, {"r": "4"}, r"LoraSettings\.r: value '4' \(str\)"),
        (LoraSettings, {"target_modules": ["q_proj", 3]}, r"LoraSettings\.target_modules: value \['q_proj', 3\] \(list\) .* type list\[str\] \| str"),
        (LMConfig, {"rope_theta": "1e4"}, r"LMConfig\.rope_theta: value '1e4' \(str\)"),
        (CodecTrainArgs, {"learning_rate": "1e-4"}, r"CodecTrainArgs\.learning_rate: value '1e-4' \(str\)"),
        (CodecModelSection, {"token_rate": 50.0}, r"CodecModelSection\.token_rate: value 50\.0 \(float\)"),
    ],
)
def test_config_values_of_the_wrong_type_are_named(cls, kwargs, message):
    with pytest.raises(TypeError, match=message):
        cls(**kwargs)


def test_a_value_outside_a_choice_is_a_value_error():
    with pytest.raises(ValueError, match=r"TrainConfig\.on_too_long: value 'trim' is not one of \['error', 'drop', "
                                         r"'cut'\]"):
        TrainConfig(on_too_long="trim")


def test_ints_for_floats_become_floats_and_sections_may_be_objects():
    config = TrainConfig(learning_rate=1, weight_decay=0)
    assert isinstance(config.learning_rate, float) and isinstance(config.weight_decay, float)
    recipe = RecipeConfig(task="continuation", train=dataclasses.replace(config, max_steps=3))
    assert recipe.train.max_steps == 3
    with pytest.raises(TypeError, match=r"RecipeConfig\.train: expected a mapping of TrainConfig keys"):
        RecipeConfig(task="continuation", train="fast")


@pytest.mark.parametrize("text, kind", [("- task: continuation\n", "list"), ("just words\n", "str"), ("42\n", "int")])
def test_a_config_file_that_is_not_a_mapping_is_named(tmp_path, capsys, text, kind):
    from semantilm.cli.main import main

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"c\.yaml: a config file must hold a mapping of keys .* holds a {kind}"):
        load_config(RecipeConfig, path)
    with pytest.raises(ConfigError, match=rf"c\.yaml: a config file must hold a mapping of keys .* holds a {kind}"):
        TrainConfig.from_yaml(path)
    assert main(["train", "--config", str(path)]) == 2
    assert "c.yaml: a config file must hold a mapping of keys" in capsys.readouterr().err


def test_a_recipe_stops_before_training_on_too_long_examples_unless_told(tmp_path):
    from semantilm.training.recipes import run_recipe
    from tests.semantilm.training.test_recipes import tiny_config

    out = tmp_path / "run"
    steps = ["train.max_steps=1", "train.save_steps=1", "data.synthetic_examples=4", "train.max_length=48"]
    with pytest.raises(ValueError, match=r"4 of 4 examples of the training set are longer than max_length=48 LM ids "
                                         r"\(by up to \d+.*in a recipe: data\.on_too_long, train\.max_length"):
        run_recipe(tiny_config("text_to_audio", out, *steps))
    assert not list(out.glob("checkpoint-*"))
    result = run_recipe(tiny_config("text_to_audio", out, *steps, "data.on_too_long=cut"))
    assert result.global_step == 1 and result.num_examples == 4


def test_tokens_of_another_codec_are_refused_by_train_lm(tmp_path, sp_tok):
    data = rows([2, 3])
    wide = Dataset.from_dict({**data.to_dict(), "acoustic_ids": [[0, 200], [1, 2, 3]]})  # the layout has 8
    with pytest.raises(ValueError, match=r"the training set holds acoustic ids in \[0, 200\] but the LM's layout "
                                         r"\(codec variant 'fake-test-double'\) has 8: the tokens come from another codec"):
        train_lm(small_model(sp_tok), sp_tok, wide, config(tmp_path))
