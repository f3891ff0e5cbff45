"""Caption text: a tokenizer trained on lower-case captions folds the case of every caption it meets
(in training, generation and the exported tokenizer.json alike), and characters it does not know
are named in a warning instead of silently becoming <unk>."""

import json

import pytest

from semantilm.generation.prompts import text_prompts
from semantilm.models.lm import build_lm, load_lm, save_lm
from semantilm.tokens.tokenizer import (
    TOKENIZER_INFO_FILE,
    AudioTextTokenizer,
    CaptionWarning,
    train_sentencepiece,
)

LOWER = ["a dog barks twice in a quiet room", "rain falls on a tin roof", "birds sing in the morning forest"] * 4


def tokenizer(tmp_path, texts, fake_codec, **kwargs):
    path = train_sentencepiece(texts, tmp_path / "text.model", vocab_size=40, **kwargs)
    return AudioTextTokenizer.from_sentencepiece(path, fake_codec)


def test_lower_case_captions_give_a_case_folding_tokenizer_everywhere(tmp_path, fake_codec):
    from transformers import AutoTokenizer

    from semantilm.models.lm import LMConfig

    tok = tokenizer(tmp_path, LOWER, fake_codec)
    assert tok.normalization() == "nmt_nfkc_cf"
    assert tok.encode_text("A Dog BARKS") == tok.encode_text("a dog barks")
    assert 0 not in tok.encode_text("A Dog BARKS")  # no <unk>
    folder = save_lm(build_lm(tok.layout, LMConfig(hidden_size=8, num_attention_heads=2), seed=0), tok.layout,
                     tmp_path / "lm", tokenizer=tok)
    assert json.loads((folder / TOKENIZER_INFO_FILE).read_text())["normalization"] == "nmt_nfkc_cf"
    loaded = load_lm(folder).tokenizer
    assert loaded.text_prompt("Rain Falls") == tok.text_prompt("rain falls")
    hf = AutoTokenizer.from_pretrained(folder)
    assert hf("Rain FALLS")["input_ids"] == hf("rain falls")["input_ids"] == tok._prefix() + tok.encode_text("rain falls")


def test_the_case_is_kept_when_the_captions_use_it(tmp_path, fake_codec):
    mixed = tokenizer(tmp_path, ["A Dog barks in Paris"] + LOWER, fake_codec)
    assert mixed.normalization() == "nmt_nfkc"
    assert mixed.encode_text("A Dog") != mixed.encode_text("a dog")
    forced = tokenizer(tmp_path, ["A Dog barks in Paris"] + LOWER, fake_codec, lowercase=True)
    assert forced.normalization() == "nmt_nfkc_cf" and forced.encode_text("A DOG") == forced.encode_text("a dog")


def test_unknown_characters_are_named_at_generation(tmp_path, fake_codec):
    tok = tokenizer(tmp_path, LOWER, fake_codec)
    assert tok.unknown_characters("Café nº 5, a dog!") == ["é", "5", ",", "!"]  # NFKC reads º as o
    assert tok.unknown_characters("A DOG barks") == []
    with pytest.warns(CaptionWarning, match=r"1 of the prompts holds characters the caption tokenizer does not know, "
                                            r"which become <unk>: 'a dog at 5 pm' \('5', 'p'\)"):
        prompts, _ = text_prompts(tok, ["a dog at 5 pm", "A DOG", ""])
    assert prompts[1] == tok.text_prompt("a dog")


def test_the_command_line_prints_caption_warnings_on_one_line(capsys):
    from semantilm.cli.main import _warning_printer

    show = _warning_printer("generate")
    show(CaptionWarning("1 of the prompts holds characters ..."), CaptionWarning, "x.py", 1)
    assert capsys.readouterr().err == "semantilm generate: warning: 1 of the prompts holds characters ...\n"
    assert issubclass(CaptionWarning, UserWarning)  # an ordinary warning in Python
