import math

import pytest
import torch

from semantilm.generation.generate import (
    AudioTokenConstraintLogitsProcessor,
    ClassifierFreeGuidanceLogitsProcessor,
    continue_audio,
    generate_audio,
    generate_tokens,
)
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer
from tests.semantilm.conftest import FakeCodec, make_clip

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=96)


@pytest.fixture(params=["interleave", "semantic_first"])
def setup(request, sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size(), pattern=request.param)
    model = build_lm(layout, TINY, seed=0).eval()
    return model, AudioTextTokenizer(sp, layout), fake_codec


def test_processor_masks_by_position_and_never_in_place():
    lay = AudioTokenLayout(text_vocab_size=5, semantic_vocab_size=3, acoustic_vocab_size=2)
    proc = AudioTokenConstraintLogitsProcessor(lay, max_frames=2)
    S, A = lay.semantic_offset, lay.acoustic_offset
    inputs = torch.tensor(
        [
            [1, 2, lay.audio_start_id, S, A],  # frame boundary: semantic or end
            [1, lay.audio_start_id, S, A, S],  # inside a frame: acoustic only
            [lay.audio_start_id, S, A, S + 1, A + 1],  # at max_frames: end only
            [1, 2, 3, 4, 0],  # no span yet: open one
        ]
    )
    scores = torch.zeros(4, lay.vocab_size)
    out = proc(inputs, scores)
    assert bool((scores == 0).all())  # untouched
    allowed = [set(torch.isfinite(r).nonzero().flatten().tolist()) for r in out]
    assert allowed[0] == {S, S + 1, S + 2, lay.audio_end_id}
    assert allowed[1] == {A, A + 1}
    assert allowed[2] == {lay.audio_end_id}
    assert allowed[3] == {lay.audio_start_id}
    with pytest.raises(ValueError, match="min_frames"):
        AudioTokenConstraintLogitsProcessor(lay, max_frames=2, min_frames=0)
    with pytest.raises(ValueError, match="max_frames"):
        AudioTokenConstraintLogitsProcessor(lay, max_frames=1, min_frames=2)
    with pytest.raises(TypeError, match="max_frames"):
        AudioTokenConstraintLogitsProcessor(lay, max_frames=1.5)


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_every_sampled_generation_decodes(setup, captions, guidance):
    model, tok, codec = setup
    for seed in range(2):
        out = generate_audio(
            model, tok, codec, captions[:3] + [""], seconds=0.2, guidance_scale=guidance,
            temperature=2.0, top_k=None, seed=seed,
        )
        max_frames = math.ceil(0.2 * codec.frame_rate)
        assert out.tokens.shape[0] == 4 and out.audio.shape[0] == 4
        assert bool((out.token_lengths >= 1).all()) and bool((out.token_lengths <= max_frames).all())
        assert torch.equal(out.lengths, out.token_lengths * codec.hop)
        assert out.sample_rate == 16000


def test_top_k_top_p_and_batching_agree_with_single_batch(setup, captions):
    model, tok, codec = setup
    a = generate_audio(model, tok, codec, captions[:4], seconds=0.1, do_sample=False, guidance_scale=2.0)
    b = generate_audio(model, tok, codec, captions[:4], seconds=0.1, do_sample=False, guidance_scale=2.0, batch_size=3)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.audio, b.audio)
    c = generate_audio(model, tok, codec, captions[:2], seconds=0.1, top_k=3, top_p=0.9, seed=0)
    assert bool((c.token_lengths >= 1).all())


def test_cfg_processor_matches_manual_formula(setup):
    model, tok, _ = setup
    cond = torch.tensor([tok.text_prompt("rain falls")])
    uncond = torch.tensor([tok.text_prompt(None)])
    proc = ClassifierFreeGuidanceLogitsProcessor(model, uncond, torch.ones_like(uncond), 3.0, cond.shape[1])
    with torch.no_grad():
        scores = model(cond).logits[:, -1]
        out = proc(cond, scores)
        lc = torch.log_softmax(scores, -1)
        lu = torch.log_softmax(model(uncond).logits[:, -1], -1)
        torch.testing.assert_close(out, lu + 3.0 * (lc - lu))
        # Next step with the cache equals a full forward of the longer unconditional prompt.
        nxt = torch.tensor([[tok.layout.semantic_offset + 1]])
        cond2 = torch.cat([cond, nxt], 1)
        out2 = proc(cond2, model(cond2).logits[:, -1])
        lu2 = torch.log_softmax(model(torch.cat([uncond, nxt], 1)).logits[:, -1], -1)
        lc2 = torch.log_softmax(model(cond2).logits[:, -1], -1)
        torch.testing.assert_close(out2, lu2 + 3.0 * (lc2 - lu2), rtol=1e-4, atol=1e-4)


def test_continue_audio_keeps_prompt_tokens(setup):
    model, tok, codec = setup
    clips = [make_clip(0, seconds=0.06), make_clip(1, seconds=0.1)]
    prompt_tokens = codec.encode(clips, 16000).unbatch()
    out = continue_audio(model, tok, codec, clips, seconds=0.1, sample_rate=16000, seed=0, temperature=1.5)
    new = math.ceil(0.1 * codec.frame_rate)
    for b, t in enumerate(prompt_tokens):
        n = t.shape[0]
        assert n < out.token_lengths[b] <= n + new
        if tok.layout.pattern == "interleave":
            assert torch.equal(out.tokens[b, :n], t)
        else:  # the prompt gives its semantic ids; acoustic ids are generated for the whole clip
            assert torch.equal(out.tokens[b, :n, 0], t[:, 0])
        assert out.lengths[b] == (out.token_lengths[b] - n) * codec.hop
    full = continue_audio(model, tok, codec, clips, seconds=0.1, sample_rate=16000, seed=0, temperature=1.5, return_prompt=True)
    assert torch.equal(full.lengths, full.token_lengths * codec.hop)


def test_clear_errors(setup, captions):
    model, tok, codec = setup
    with pytest.raises(ValueError, match="context of 96"):
        generate_audio(model, tok, codec, captions[:1], seconds=2.0)
    with pytest.raises(TypeError, match="list of captions"):
        generate_audio(model, tok, codec, "a dog", seconds=0.1)
    with pytest.raises(TypeError, match=r"prompts\[1\] must be a str"):
        generate_audio(model, tok, codec, ["a", 3], seconds=0.1)
    with pytest.raises(ValueError, match="seconds must be"):
        generate_audio(model, tok, codec, ["a"], seconds=0)
    with pytest.raises(ValueError, match="does not match codec"):
        generate_audio(model, tok, FakeCodec(semantic_vocab_size=5), ["a"], seconds=0.1)
    lay = tok.layout
    with pytest.raises(ValueError, match="outside the LM vocabulary"):
        generate_tokens(model, lay, [[lay.audio_start_id, lay.vocab_size]], 2)
    with pytest.raises(ValueError, match="has no"):
        generate_tokens(model, lay, [[1, 2]], 2)
