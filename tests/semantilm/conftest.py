"""Fixtures for the LM-side tests: a cheap stand-in codec, captions and tiny text tokenizers."""

from __future__ import annotations

import pytest
import torch

from tests.fake_codec import FakeCodec, make_clip  # noqa: F401 - re-exported for the LM tests


@pytest.fixture(autouse=True)
def _lm_tests_on_one_thread(one_torch_thread):
    """Every LM test runs on one torch thread (see tests/conftest.py)."""
    yield

CAPTIONS = [
    "a dog barks twice in a quiet room",
    "rain falls on a tin roof",
    "a violin plays a slow melody",
    "birds sing in the morning forest",
    "a car passes by on a wet street",
    "people talk in a busy cafe",
]


@pytest.fixture
def fake_codec() -> FakeCodec:
    return FakeCodec()


@pytest.fixture(scope="session")
def captions() -> list[str]:
    return list(CAPTIONS)


@pytest.fixture(scope="session")
def sp_model_path(tmp_path_factory) -> str:
    """A tiny sentencepiece model trained on the test captions."""
    from semantilm.tokens.tokenizer import train_sentencepiece

    path = tmp_path_factory.mktemp("sp") / "text.model"
    train_sentencepiece(CAPTIONS * 4, path, vocab_size=48)
    return str(path)


@pytest.fixture(scope="session")
def hf_pretrained_dir(tmp_path_factory) -> str:
    """A tiny GPT-2 with a tiny locally trained BPE tokenizer, saved as if it were a hub model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CAPTIONS * 4, trainers.BpeTrainer(vocab_size=80, special_tokens=["<unk>", "<|endoftext|>"]))
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(hf_tok), n_positions=128, n_embd=32, n_layer=2, n_head=2, bos_token_id=1, eos_token_id=1)
    model = GPT2LMHeadModel(config)
    path = tmp_path_factory.mktemp("pretrained") / "tiny-gpt2"
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return str(path)
