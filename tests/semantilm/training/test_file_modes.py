"""Every file of a saved checkpoint has the permissions the umask gives (0644 under 022, 0640 under
027): the weights that transformers and peft write through private temporary files too, the
Trainer's state, tokenizer files, merged checkpoints and saved or exported codecs."""

import os
from pathlib import Path

import pytest

from semantilm.training.recipes import run_recipe
from tests.semantilm.training.test_recipes import tiny_config


def files(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in sorted(folder.iterdir()) if p.is_file()]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_checkpoint_file_follows_the_umask(tmp_path, umask, hf_pretrained_dir):
    from codec.training.export import export_codec
    from semantilm.codec_api import load_codec
    from semantilm.models.lora import merge_lora_checkpoint

    full, lora = tmp_path / "full", tmp_path / "lora"
    previous = os.umask(umask)
    try:
        run_recipe(tiny_config("text_to_audio", full, "train.max_steps=2", "train.save_steps=1",
                               "data.synthetic_examples=4"))
        run_recipe(tiny_config("continuation", lora, "model.size=null", f"model.pretrained={hf_pretrained_dir}",
                               "model.lora.r=2", "train.max_steps=1", "train.save_steps=1",
                               "data.synthetic_examples=4"))
        merged = merge_lora_checkpoint(lora, tmp_path / "merged")
        load_codec("tiny-random", decoder=True).save_pretrained(tmp_path / "codec")
        exported = export_codec(tmp_path / "codec", tmp_path / "exported")
    finally:
        os.umask(previous)
    checked = files(full, full / "checkpoint-1", full / "checkpoint-2", lora, lora / "checkpoint-1", merged,
                    tmp_path / "codec", exported)
    names = {p.name for p in checked}
    assert {"model.safetensors", "adapter_model.safetensors", "optimizer.pt", "trainer_state.json",
            "tokenizer.json", "semantilm_codec.json", "text.model", "config.json"} <= names
    wrong = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in checked
             if p.stat().st_mode & 0o777 != 0o666 & ~umask}
    assert not wrong, f"files whose mode is not {oct(0o666 & ~umask)}: {wrong}"
