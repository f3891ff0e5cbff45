from pathlib import Path

import pytest
import torch

from semantilm.models.lm import (
    LMConfig,
    build_lm,
    extend_pretrained_lm,
    layout_for_pretrained,
    load_lm,
    save_lm,
)
from semantilm.models.lora import LoraSettings, apply_lora, merge_lora
from semantilm.tokens.layout import AudioTokenLayout, LayoutNotFoundError
from semantilm.tokens.tokenizer import AudioTextTokenizer

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "lm"


def test_yaml_configs_are_valid():
    tiny = LMConfig.from_yaml(CONFIGS / "tiny.yaml")
    base = LMConfig.from_yaml(CONFIGS / "base-100m.yaml")
    assert tiny.hidden_size < base.hidden_size
    with pytest.raises(ValueError, match="divisible"):
        LMConfig(hidden_size=30, num_attention_heads=4)


def test_build_from_scratch_save_load_identical_logits(tmp_path, fake_codec, sp_model_path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size())
    model = build_lm(layout, CONFIGS / "tiny.yaml", seed=0).eval()
    assert model.get_input_embeddings().num_embeddings == layout.vocab_size
    tok = AudioTextTokenizer(sp, layout)
    ids = torch.tensor([tok.text_to_audio_example("rain falls", torch.tensor([[1, 2], [3, 4]])).input_ids])
    save_lm(model, layout, tmp_path / "lm", tokenizer=tok)
    loaded = load_lm(tmp_path / "lm", codec=fake_codec)
    assert loaded.layout == layout and loaded.tokenizer.kind == "sentencepiece"
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded.model.eval()(ids).logits)
    # A plain transformers load works too.
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(tmp_path / "lm").config.vocab_size == layout.vocab_size
    assert not list(tmp_path.glob(".lm.tmp-*"))  # no temporary folder left behind


def test_load_errors(tmp_path, fake_codec, hf_pretrained_dir):
    with pytest.raises(LayoutNotFoundError, match="semantilm_config.json"):
        load_lm(hf_pretrained_dir)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=10)
    model = build_lm(layout, LMConfig())
    save_lm(model, layout, tmp_path / "m")
    from tests.semantilm.conftest import FakeCodec

    with pytest.raises(ValueError, match="does not match codec"):
        load_lm(tmp_path / "m", codec=FakeCodec(acoustic_vocab_size=4))
    other = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=11)
    with pytest.raises(ValueError, match="embedding rows"):
        save_lm(model, other, tmp_path / "n")


def test_extend_pretrained_keeps_text_outputs(hf_pretrained_dir, fake_codec):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(hf_pretrained_dir).eval()
    text_tok = AutoTokenizer.from_pretrained(hf_pretrained_dir)
    ids = torch.tensor([text_tok.encode("rain falls on a tin roof")])
    with torch.no_grad():
        before = model(ids).logits
    old_rows = model.get_input_embeddings().weight.detach().clone()
    layout = layout_for_pretrained(model, fake_codec, text_tokenizer=text_tok)
    extend_pretrained_lm(model, layout)
    with torch.no_grad():
        after = model(ids).logits
    assert after.shape[-1] == layout.vocab_size
    torch.testing.assert_close(after[..., : layout.text_vocab_size], before)
    new_rows = model.get_input_embeddings().weight[layout.text_vocab_size :]
    torch.testing.assert_close(new_rows, old_rows.mean(0).expand_as(new_rows))
    with pytest.raises(ValueError, match="embedding rows"):
        extend_pretrained_lm(model, layout)


def _count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("tied", [True, False])
def test_lora_trains_only_adapters_and_new_rows(tmp_path, fake_codec, tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    hidden, text_vocab = 16, 40
    base = LlamaForCausalLM(
        LlamaConfig(vocab_size=text_vocab, hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied)
    )
    layout = layout_for_pretrained(base, fake_codec)
    extend_pretrained_lm(base, layout)
    emb_before = base.get_input_embeddings().weight.detach().clone()
    peft_model = apply_lora(base, layout, LoraSettings(r=2, alpha=4))
    n_new = layout.num_new_tokens
    # LoRA on q,k,v,o (16->16, 16->16, 16->16 (kv heads 2 x 8), 16->16) and gate/up (16->32), down (32->16).
    lora = 2 * ((16 + 16) * 4 + (16 + 32) * 3)
    expected = lora + n_new * hidden * (1 if tied else 2)
    assert _count(peft_model) == expected
    # Train a step: only the new rows of the embedding table may change.
    ids = torch.tensor([[1, 2, layout.audio_start_id, layout.semantic_offset + 3, layout.acoustic_offset + 1]])
    opt = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=1.0)
    for _ in range(2):
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    merged = merge_lora(peft_model)
    w = merged.get_input_embeddings().weight.detach()
    assert torch.equal(w[: layout.text_vocab_size], emb_before[: layout.text_vocab_size])  # text rows frozen
    used = [layout.audio_start_id, layout.semantic_offset + 3, layout.acoustic_offset + 1]
    assert not torch.equal(w[used], emb_before[used])  # the new rows trained
    save_lm(merged, layout, tmp_path / "merged")
    loaded = load_lm(tmp_path / "merged").model.eval()
    merged.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, merged(ids).logits)
    assert w.shape[0] == layout.vocab_size


def test_lora_modules_to_save_counts(hf_pretrained_dir, fake_codec):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_pretrained_dir)
    layout = layout_for_pretrained(model, fake_codec)
    extend_pretrained_lm(model, layout)
    peft_model = apply_lora(model, layout, LoraSettings(r=2, new_tokens="modules_to_save", target_modules=["c_attn"]))
    hidden = model.config.n_embd
    lora = 2 * (2 * (hidden + 3 * hidden))  # 2 layers, c_attn hidden -> 3 hidden
    assert _count(peft_model) == lora + layout.vocab_size * hidden  # full (tied) embedding copy
