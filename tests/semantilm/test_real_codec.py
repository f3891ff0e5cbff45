"""The LM side with the real SemantiCodec (tiny, random weights, with its diffusion decoder).

The other LM tests use a cheap test double; these check that the contract holds for the real
codec: dataset tokenisation, layout, sampled generation and continuation all decode.
"""

import pytest
import torch

import semantilm as sl
from codec import DecodeSettings, SemantiCodec, SemantiCodecConfig
from semantilm.codec_api import check_codec


@pytest.fixture(scope="module")
def real_codec():
    torch.manual_seed(0)
    return SemantiCodec(SemantiCodecConfig.tiny(100, name="tiny-random-test"), with_decoder=True)


@pytest.fixture(scope="module")
def lm_and_tokenizer(real_codec, tmp_path_factory):
    from tests.semantilm.conftest import CAPTIONS

    path = tmp_path_factory.mktemp("sp") / "text.model"
    sl.train_sentencepiece(CAPTIONS * 4, path, vocab_size=48)
    tok = sl.AudioTextTokenizer.from_sentencepiece(path, real_codec)
    model = sl.build_lm(tok.layout, "configs/lm/tiny.yaml", seed=0)
    return model, tok


def test_real_codec_follows_the_contract(real_codec):
    check_codec(real_codec)
    assert real_codec.frame_rate == 50 and real_codec.sample_rate == 16000
    assert real_codec.semantic_vocab_size == 64 and real_codec.acoustic_vocab_size == 64


def test_layout_offsets_follow_the_codec(lm_and_tokenizer, real_codec):
    _, tok = lm_and_tokenizer
    layout = tok.layout
    assert layout.acoustic_offset == layout.semantic_offset + real_codec.semantic_vocab_size
    assert layout.vocab_size == layout.acoustic_offset + real_codec.acoustic_vocab_size


@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_text_to_audio_decodes(lm_and_tokenizer, real_codec, seed):
    model, tok = lm_and_tokenizer
    out = sl.generate_audio(model, tok, real_codec, ["a steady tone", ""],
                            sampling=sl.SamplingSettings(seconds=0.2, seed=seed), decode=DecodeSettings(steps=2))
    assert out.audio.shape[0] == 2 and torch.isfinite(out.audio).all()
    for frames, samples in zip(out.token_lengths.tolist(), out.lengths.tolist()):
        assert 1 <= frames <= 10
        assert samples == real_codec.config.num_samples(frames)


def test_continuation_decodes(lm_and_tokenizer, real_codec):
    model, tok = lm_and_tokenizer
    clip = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(8000) / 16000)
    out = sl.continue_audio(model, tok, real_codec, [clip], 16000, sampling=sl.SamplingSettings(seconds=0.1, seed=0),
                            decode=DecodeSettings(steps=2))
    prompt_frames = real_codec.config.num_frames(8000)
    assert out.token_lengths.item() > prompt_frames
    assert torch.isfinite(out.audio).all() and out.lengths.item() > 0
