import math

import pytest
import torch

from semantilm.generation.generate import continue_audio, generate_audio
from semantilm.generation.outputs import AudioGenerationOutput
from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.generation.settings import SamplingSettings as S
from semantilm.generation.token_generation import continue_tokens, generate_tokens, text_to_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer
from tests.semantilm.conftest import FakeCodec, make_clip
from tests.semantilm.generation.two_call_oracle import TwoCallGuidance

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
        sampling = S(seconds=0.2, guidance_scale=guidance, temperature=2.0, top_k=None, seed=seed)
        out = generate_audio(model, tok, codec, captions[:3] + [""], sampling=sampling)
        max_frames = math.ceil(0.2 * codec.frame_rate)
        assert out.tokens.shape[0] == 4 and out.audio.shape[0] == 4
        assert bool((out.token_lengths >= 1).all()) and bool((out.token_lengths <= max_frames).all())
        assert torch.equal(out.lengths, out.token_lengths * codec.hop)
        assert out.sample_rate == 16000


def test_top_k_top_p_and_batching_agree_with_single_batch(setup, captions):
    model, tok, codec = setup
    greedy = S(seconds=0.1, do_sample=False, guidance_scale=2.0)
    a = generate_audio(model, tok, codec, captions[:4], sampling=greedy)
    b = generate_audio(model, tok, codec, captions[:4], sampling=greedy.replace(batch_size=3))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.audio, b.audio)
    assert codec.decode_calls == 2  # one decode of every clip per call
    c = generate_audio(model, tok, codec, captions[:2], sampling=S(seconds=0.1, top_k=3, top_p=0.9, seed=0))
    assert bool((c.token_lengths >= 1).all())


def test_two_call_oracle_matches_manual_formula(setup):
    model, tok, _ = setup
    cond = torch.tensor([tok.text_prompt("rain falls")])
    uncond = torch.tensor([tok.text_prompt(None)])
    proc = TwoCallGuidance(model, uncond, torch.ones_like(uncond), 3.0, cond.shape[1])
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
    out = continue_audio(model, tok, codec, clips, 16000, sampling=S(seconds=0.1, seed=0, temperature=1.5))
    new = math.ceil(0.1 * codec.frame_rate)
    assert torch.equal(out.lengths, out.token_lengths * codec.hop)  # the whole clips, prompt first
    assert out.prompt_lengths.tolist() == [t.shape[0] * codec.hop for t in prompt_tokens]
    for b, t in enumerate(prompt_tokens):
        n = t.shape[0]
        assert n < out.token_lengths[b] <= n + new
        assert torch.equal(out.tokens[b, :n, 0], t[:, 0])
        # The ids the pattern's prompt gave are kept (all of them for interleave; for semantic_first
        # the acoustic ids of the prompt frames are generated).
        assert tok.continuation_prompt(out.tokens[b, :n]) == tok.continuation_prompt(t)
        assert out.continuations()[b].shape[0] == (out.token_lengths[b] - n) * codec.hop
        assert torch.equal(out.continuations()[b], out.audio[b, n * codec.hop : out.lengths[b]])
    with pytest.raises(ValueError, match="needs a caption-less prompt per prompt to guide against"):
        continue_audio(model, tok, codec, clips, 16000, sampling=S(seconds=0.1, guidance_scale=3.0))


def test_clear_errors(setup, captions):
    model, tok, codec = setup
    with pytest.raises(ValueError, match="context of 96"):
        generate_audio(model, tok, codec, captions[:1], sampling=S(seconds=2.0))
    with pytest.raises(TypeError, match="list of captions"):
        generate_audio(model, tok, codec, "a dog")
    with pytest.raises(TypeError, match=r"prompts\[1\] must be a str"):
        generate_audio(model, tok, codec, ["a", 3])
    with pytest.raises(ValueError, match="seconds must be a finite number > 0, got 0"):
        S(seconds=0)
    with pytest.raises(TypeError, match="sampling must be a SamplingSettings or None, got dict"):
        generate_audio(model, tok, codec, ["a"], sampling={"seconds": 1})
    with pytest.raises(ValueError, match="does not match codec"):
        generate_audio(model, tok, FakeCodec(semantic_vocab_size=5), ["a"], sampling=S(seconds=0.1))
    lay = tok.layout
    with pytest.raises(ValueError, match="outside the LM vocabulary"):
        generate_tokens(model, lay, [[lay.audio_start_id, lay.vocab_size]], 2)
    with pytest.raises(ValueError, match="has no"):
        generate_tokens(model, lay, [[1, 2]], 2)


def test_decode_settings_and_generator_reach_the_codec(setup, captions):
    from codec import DecodeSettings

    model, tok, codec = setup
    calls = []
    decode = codec.decode

    def recording_decode(tokens, lengths=None, **kwargs):
        calls.append(kwargs)
        return decode(tokens, lengths, **kwargs)

    codec.decode = recording_decode
    generator = torch.Generator()
    settings = DecodeSettings(sampler="dpmsolver++", steps=7, cfg_scale=1.5)
    short = S(seconds=0.04)
    generate_audio(model, tok, codec, captions[:1], sampling=short, decode=settings, generator=generator, progress=False)
    continue_audio(model, tok, codec, [make_clip(0, 0.04)], 16000, sampling=short)
    assert calls == [
        dict(settings=settings, generator=generator, progress=False),
        dict(settings=DecodeSettings(), generator=None, progress=False),
    ]
    with pytest.raises(TypeError, match="DecodeSettings"):
        generate_audio(model, tok, codec, captions[:1], sampling=short, decode={"steps": 2})


def test_token_level_entry_points_and_prompt_errors(setup, captions):
    model, tok, codec = setup
    greedy = S(do_sample=False, seconds=3 / codec.frame_rate, guidance_scale=2.0)
    tokens, lengths = text_to_tokens(model, tok, captions[:2], sampling=greedy)
    assert tokens.shape == (2, int(lengths.max()), 2) and bool(((lengths >= 1) & (lengths <= 3)).all())
    clips = codec.encode([make_clip(0, 0.04), make_clip(1, 0.06)], 16000).unbatch()
    two = S(do_sample=False, seconds=2 / codec.frame_rate)
    tokens, lengths, frames = continue_tokens(model, tok, clips, sampling=two)
    assert frames == [2, 3] and all(f < n <= f + 2 for f, n in zip(frames, lengths.tolist()))
    with pytest.raises(ValueError, match=r"prompts\[0\] has id \d+ at position 0 of its audio span"):
        generate_tokens(model, tok.layout, [tok.text_prompt(None) + [tok.layout.acoustic_offset]], 5)


def test_outputs_concat_pads_to_the_widest_part():
    a = AudioGenerationOutput(torch.ones(1, 4), torch.tensor([4]), 16000, torch.ones(1, 2, 2, dtype=torch.long), torch.tensor([2]))
    b = AudioGenerationOutput(torch.ones(2, 6), torch.tensor([6, 5]), 16000, torch.ones(2, 3, 2, dtype=torch.long),
                              torch.tensor([3, 3]))
    out = AudioGenerationOutput.concat([a, b])
    assert out.audio.shape == (3, 6) and out.audio[0, 4:].eq(0).all() and out.tokens.shape == (3, 3, 2)
    assert out.lengths.tolist() == [4, 6, 5] and out.token_lengths.tolist() == [2, 3, 3]
    assert [w.numel() for w in out.unbatch()] == [4, 6, 5]


def test_interleave_prompts_must_hold_whole_frames():
    layout = AudioTokenLayout(text_vocab_size=5, semantic_vocab_size=3, acoustic_vocab_size=2)
    model = build_lm(layout, TINY, seed=0)
    ids = [layout.audio_start_id, layout.semantic_offset, layout.acoustic_offset, layout.semantic_offset + 2]
    generate_tokens(model, layout, [ids[:3]], 2, sampling=S(do_sample=False))
    with pytest.raises(ValueError, match=r"prompts\[1\] ends inside a frame; give whole frames"):
        generate_tokens(model, layout, [ids[:3], ids], 3)


def test_a_codec_without_window_decoding_streams_each_clip_whole(setup, captions):
    from semantilm.generation.stream import collect_chunks, continue_audio_stream, generate_audio_stream

    model, tok, codec = setup
    sampling = S(seconds=0.1, seed=3, num_return_sequences=2, batch_size=1)
    chunks = list(generate_audio_stream(model, tok, codec, captions[:2], sampling=sampling))
    assert [c.index for c in chunks] == [0, 1, 2, 3] and all(c.final and c.offset == 0 for c in chunks)
    streamed, whole = collect_chunks(iter(chunks)), generate_audio(model, tok, codec, captions[:2], sampling=sampling)
    assert torch.equal(streamed.audio, whole.audio) and torch.equal(streamed.tokens, whole.tokens)
    clips = [make_clip(0, 0.06)]
    stream = continue_audio_stream(model, tok, codec, clips, 16000, sampling=S(seconds=0.1, seed=1))
    whole = continue_audio(model, tok, codec, clips, 16000, sampling=S(seconds=0.1, seed=1))
    assert stream.prompt_samples == whole.prompt_lengths.tolist()
    assert torch.equal(collect_chunks(stream).audio, whole.audio)
