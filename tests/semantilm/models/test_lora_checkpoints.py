"""LoRA checkpoints: the adapter finds its base LM from any working folder (and names it when it
cannot), and merging or saving never replaces another checkpoint without overwrite=True."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from plumbing.config_file import ConfigError
from plumbing.io import OutputExistsError
from semantilm.models.hub import CodecReference, load_codec_reference, save_codec_reference
from semantilm.models.lm import (
    LMConfig,
    build_lm,
    extend_pretrained_lm,
    layout_for_pretrained,
    load_lm,
    save_lm,
)
from semantilm.models.lora import apply_lora, merge_lora_checkpoint
from semantilm.tokens.tokenizer import AudioTextTokenizer


@pytest.fixture
def adapter(tmp_path, monkeypatch, hf_pretrained_dir, fake_codec):
    """A LoRA adapter checkpoint whose base LM was loaded by a relative path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = Path(hf_pretrained_dir)
    monkeypatch.chdir(base_dir.parent)
    relative = f"./{base_dir.name}"
    base = AutoModelForCausalLM.from_pretrained(relative)
    text_tok = AutoTokenizer.from_pretrained(relative)
    layout = layout_for_pretrained(base, fake_codec, text_tokenizer=text_tok)
    model = apply_lora(extend_pretrained_lm(base, layout), layout)
    src = tmp_path / "adapter"
    model.save_pretrained(src)
    AudioTextTokenizer(text_tok, layout).save_pretrained(src)
    layout.save_pretrained(src)
    save_codec_reference(src, CodecReference("tiny-random", 100, 16384, "fake"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where the checkpoint is used later
    return src


def test_an_adapter_records_its_base_by_an_absolute_path(adapter, hf_pretrained_dir):
    recorded = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == str(Path(hf_pretrained_dir).resolve())
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert load_lm(adapter).model(ids).logits.shape[1] == 3  # loads from another working folder


def test_a_recipe_records_a_relative_pretrained_path_as_absolute(monkeypatch, hf_pretrained_dir):
    from tests.semantilm.training.test_recipes import tiny_config

    base_dir = Path(hf_pretrained_dir)
    monkeypatch.chdir(base_dir.parent)
    config = tiny_config("continuation", "out", "model.size=null", f"model.pretrained=./{base_dir.name}",
                         "model.lora.r=2")
    assert config.model.pretrained == str(base_dir.resolve())
    with pytest.raises(ConfigError, match=r"pretrained='\./no_such_lm' is not a folder of a pretrained LM"):
        tiny_config("continuation", "out", "model.size=null", "model.pretrained=./no_such_lm")


def test_a_missing_base_is_named_with_what_to_do(adapter, monkeypatch):
    import transformers

    config_file = adapter / "adapter_config.json"
    data = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**data, "base_model_name_or_path": "../models/tiny-gpt2"}))
    with pytest.raises(FileNotFoundError, match=r"trained on the base LM '\.\./models/tiny-gpt2', which is not a "
                                                r"folder here.*set base_model_name_or_path in .*adapter_config\.json"):
        load_lm(adapter)

    def offline(name, *args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    config_file.write_text(json.dumps({**data, "base_model_name_or_path": "someone/base-lm"}))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", offline)
    with pytest.raises(OSError, match=r"the base LM 'someone/base-lm' of the LoRA adapter in .* could not be loaded "
                                      r"\(OSError: We couldn't connect.*\); put the base LM there"):
        load_lm(adapter)


def test_merging_never_replaces_a_checkpoint_without_overwrite(adapter, tmp_path):
    with pytest.raises(ValueError, match="into its source .* over the adapter it merges"):
        merge_lora_checkpoint(adapter, adapter)
    with pytest.raises(ValueError, match="into its source"):
        merge_lora_checkpoint(adapter, adapter, overwrite=True)
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").exists()

    merged = merge_lora_checkpoint(adapter, tmp_path / "merged")
    before = {p.name: p.read_bytes() for p in merged.iterdir()}
    with pytest.raises(OutputExistsError, match=r"merged' is not empty .*nothing was written.*overwrite=True"):
        merge_lora_checkpoint(adapter, merged)
    assert {p.name: p.read_bytes() for p in merged.iterdir()} == before

    # Over another adapter checkpoint with overwrite=True: one plain model remains, no adapter beside it.
    other = shutil.copytree(adapter, tmp_path / "other")
    (other / "semantilm_codec.json").unlink()
    out = merge_lora_checkpoint(adapter, other, overwrite=True)
    assert not (out / "adapter_config.json").exists() and not (out / "adapter_model.safetensors").exists()
    assert load_codec_reference(out).variant == "fake"
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.allclose(load_lm(out).model(ids).logits, load_lm(merged).model(ids).logits)


def test_save_lm_refuses_a_folder_that_holds_files(tmp_path, fake_codec, sp_model_path):
    tok = AudioTextTokenizer.from_sentencepiece(sp_model_path, fake_codec)
    model = build_lm(tok.layout, LMConfig(hidden_size=8, num_attention_heads=2), seed=0)
    folder = save_lm(model, tok.layout, tmp_path / "lm", tokenizer=tok)
    save_codec_reference(folder, CodecReference("tiny-random", 100, 16384, "fake"))
    with pytest.raises(OutputExistsError, match="is not empty"):
        save_lm(model, tok.layout, folder, tokenizer=tok)
    save_lm(model, tok.layout, folder, tokenizer=tok, overwrite=True)
    assert load_codec_reference(folder) is None  # the old save's codec reference does not outlive it
