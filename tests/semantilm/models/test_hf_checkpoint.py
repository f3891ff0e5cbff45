"""Checkpoints in the plain Hugging Face format: the exported tokenizer lines up with the layout
(also across a text-range gap), older checkpoints still load, LoRA checkpoints merge into one."""

from pathlib import Path

import torch

from semantilm.models.hf_tokenizer import audio_token_names
from semantilm.models.lm import (
    build_lm,
    extend_pretrained_lm,
    layout_for_pretrained,
    load_lm,
    save_lm,
)
from semantilm.models.lora import apply_lora, merge_lora_checkpoint
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "lm"
AUDIO = torch.tensor([[0, 1], [15, 7], [3, 2]])


def prompt_text(caption, layout, ids):
    names = audio_token_names(layout)
    return caption + "<|audio_start|>" + "".join(names[i - layout.semantic_offset] for i in ids[-6:])


def test_sentencepiece_export_fills_the_text_gap(tmp_path, fake_codec, sp_model_path, captions):
    import sentencepiece as spm
    from transformers import AutoTokenizer

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size() + 7)
    tok = AudioTextTokenizer(sp, layout)
    save_lm(build_lm(layout, CONFIGS / "tiny.yaml", seed=0), layout, tmp_path / "lm", tokenizer=tok)
    hf = AutoTokenizer.from_pretrained(tmp_path / "lm")
    assert len(hf) == layout.vocab_size
    assert hf.convert_tokens_to_ids("<|pad|>") == layout.pad_id and hf.bos_token_id == tok.bos_id
    for caption in [*captions, "  Rain,  FALLS é 12  ", "zzz qqq"]:
        ids = tok.text_to_audio_example(caption, AUDIO, end=False).input_ids
        assert hf(prompt_text(caption, layout, ids))["input_ids"] == ids, caption


def test_older_checkpoints_without_hf_tokenizer_still_load(tmp_path, fake_codec, sp_model_path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size())
    tok = AudioTextTokenizer(sp, layout)
    folder = save_lm(build_lm(layout, CONFIGS / "tiny.yaml", seed=0), layout, tmp_path / "old", tokenizer=tok)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        (folder / name).unlink()
    loaded = load_lm(folder)
    assert loaded.tokenizer.kind == "sentencepiece"
    assert loaded.tokenizer.text_prompt("rain falls") == tok.text_prompt("rain falls")


def test_lora_checkpoint_merges_into_a_plain_checkpoint(tmp_path, fake_codec, hf_pretrained_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semantilm.models.hub import CodecReference, load_codec_reference, save_codec_reference

    base = AutoModelForCausalLM.from_pretrained(hf_pretrained_dir)
    text_tok = AutoTokenizer.from_pretrained(hf_pretrained_dir)
    layout = layout_for_pretrained(base, fake_codec, text_tokenizer=text_tok)
    model = apply_lora(extend_pretrained_lm(base, layout), layout)
    torch.manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: non-zero LoRA B and new token rows
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    src = tmp_path / "adapter"
    model.save_pretrained(src)
    tok = AudioTextTokenizer(text_tok, layout)
    tok.save_pretrained(src)
    layout.save_pretrained(src)
    save_codec_reference(src, CodecReference("tiny-random", 100, 16384, "fake"))
    assert AudioTextTokenizer.from_pretrained(src).text_prompt("rain") == tok.text_prompt("rain")

    dst = merge_lora_checkpoint(src, tmp_path / "merged")
    assert not (dst / "adapter_config.json").exists() and load_codec_reference(dst).variant == "fake"
    ids = torch.tensor([tok.text_to_audio_example("rain falls", AUDIO).input_ids])
    with torch.no_grad():
        want = load_lm(src).model.eval()(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(dst).eval()(ids).logits
        assert torch.allclose(plain, want, atol=1e-5)
        assert torch.allclose(load_lm(dst).model.eval()(ids).logits, want, atol=1e-5)
    hf = AutoTokenizer.from_pretrained(dst)
    assert len(hf) == layout.vocab_size
    expected = tok.text_to_audio_example("rain falls", AUDIO, end=False).input_ids
    audio_ids = hf(prompt_text("", layout, expected), add_special_tokens=False)["input_ids"]
    assert audio_ids == [layout.audio_start_id, *expected[-6:]]
