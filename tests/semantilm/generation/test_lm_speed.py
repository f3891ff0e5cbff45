"""LM speed settings (``LMSpeed``): a static KV cache and compiled steps write what the default writes."""

import pytest
import torch

from semantilm.generation.generate import generate_audio
from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.loop import compile_mode
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import generate_tokens, text_to_tokens
from semantilm.models.lm import build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer
from tests.semantilm.generation.test_guided import TINY, _prompts, _recorded_run

STATIC = LMSpeed(kv_cache="static")
COMPILED = LMSpeed(kv_cache="static", compile=True, compile_backend="eager")  # traces the step, no C++ build


@pytest.fixture
def setup(sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size())
    return build_lm(layout, TINY, seed=0).eval(), AudioTextTokenizer(sp, layout)


def test_static_cache_gives_the_dynamic_cache_log_probs_step_by_step(setup, captions, monkeypatch):
    model, tok = setup
    prompts, uncond = _prompts(tok, captions[:4])  # left-padded rows in both halves of the doubled batch
    (ids, lengths), dynamic = _recorded_run(monkeypatch, model, tok.layout, prompts, uncond)
    (ids_s, lengths_s), static = _recorded_run(monkeypatch, model, tok.layout, prompts, uncond, speed=STATIC)
    assert torch.equal(ids, ids_s) and torch.equal(lengths, lengths_s)
    assert len(static) == len(dynamic) >= 20
    for (seen, scores), (seen_s, scores_s) in zip(dynamic, static):
        assert torch.equal(seen, seen_s)
        finite = torch.isfinite(scores)
        assert torch.equal(finite, torch.isfinite(scores_s))
        torch.testing.assert_close(scores_s[finite], scores[finite], rtol=0, atol=1e-5)


@pytest.mark.parametrize("guidance", [1.0, 2.5], ids=["plain", "guided"])
@pytest.mark.parametrize("speed", [STATIC, COMPILED], ids=["static", "static+compile"])
def test_sampled_ids_for_a_seed_are_those_of_the_default(setup, captions, guidance, speed, monkeypatch):
    model, tok = setup
    prompts, uncond = _prompts(tok, captions[:3])
    compiled = []
    real_compile = torch.compile

    def recording_compile(*args, **kwargs):
        compiled.append(kwargs)
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    sampling = SamplingSettings(guidance_scale=guidance, temperature=1.3, top_k=20, seed=3)
    runs = [generate_tokens(model, tok.layout, prompts, 10, unconditional_prompts=uncond, sampling=sampling, speed=s)
            for s in (None, speed)]
    torch._dynamo.reset()
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    if speed.compile:  # the step went through torch.compile with the asked backend, shapes fixed
        assert compiled and all(k.get("backend") == "eager" and k.get("dynamic") is False for k in compiled)
    else:
        assert not compiled


def test_generate_audio_with_a_static_cache_gives_the_same_audio(setup, captions, fake_codec):
    model, tok = setup
    sampling = SamplingSettings(seconds=0.5, seed=1, top_k=20)
    default = generate_audio(model, tok, fake_codec, captions[:2], sampling=sampling)
    static = generate_audio(model, tok, fake_codec, captions[:2], sampling=sampling, lm_speed=STATIC)
    assert torch.equal(default.audio, static.audio) and torch.equal(default.tokens, static.tokens)


def test_bad_speed_settings_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match="kv_cache must be one of .*'dynamic', 'static'.* got 'paged'"):
        LMSpeed(kv_cache="paged")
    with pytest.raises(ValueError, match="compile=True needs kv_cache='static'.*LMSpeed\\(kv_cache='static', compile=True\\)"):
        LMSpeed(compile=True)
    assert compile_mode(LMSpeed(kv_cache="static", compile=True), torch.device("cuda")) == "reduce-overhead"
    assert compile_mode(LMSpeed(kv_cache="static", compile=True), torch.device("cpu")) is None


def test_beam_search_takes_the_static_cache_and_refuses_compilation(setup, captions):
    model, tok = setup
    beams = SamplingSettings(seconds=3 / tok.layout.frame_rate, guidance_scale=1, do_sample=False, num_beams=2)
    default = text_to_tokens(model, tok, captions[:2], sampling=beams)
    static = text_to_tokens(model, tok, captions[:2], sampling=beams, speed=STATIC)
    assert torch.equal(default[0], static[0]) and torch.equal(default[1], static[1])
    with pytest.raises(ValueError, match="beam search runs model.generate eagerly"):
        text_to_tokens(model, tok, captions[:1], sampling=beams, speed=COMPILED)
