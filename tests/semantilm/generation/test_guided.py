"""The decoding loop (one forward per step over conditional + unconditional rows) against the
two-call oracle (``model.generate`` + a second model call per step), and its guidance."""

import pytest
import torch

from semantilm.generation import loop
from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.generation.prompts import PaddedPrompts
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import generate_tokens, text_to_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer
from tests.semantilm.generation.two_call_oracle import two_call_tokens

TINY = LMConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=128)
GREEDY = SamplingSettings(do_sample=False)


@pytest.fixture(params=["interleave", "semantic_first"])
def setup(request, sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size(), pattern=request.param)
    return build_lm(layout, TINY, seed=0).eval(), AudioTextTokenizer(sp, layout)


def _prompts(tok, captions):
    """Conditional prompts of different lengths, and unconditional ones of different lengths too
    (some hold a few text ids), so that both halves of the doubled batch are left-padded."""
    prompts = [tok.text_prompt(c) for c in captions]
    uncond = [tok.text_prompt(None) if i % 2 else tok.text_prompt(captions[-1][:3]) for i in range(len(captions))]
    return prompts, uncond


def _recorded(monkeypatch, run):
    """``run()``'s result and the (ids, scores) the constraint processor receives, step by step."""
    seen = []
    original = AudioTokenConstraintLogitsProcessor.__call__

    def recording(self, input_ids, scores):
        seen.append((input_ids.clone(), scores.clone()))
        return original(self, input_ids, scores)

    monkeypatch.setattr(AudioTokenConstraintLogitsProcessor, "__call__", recording)
    try:
        return run(), seen
    finally:
        monkeypatch.setattr(AudioTokenConstraintLogitsProcessor, "__call__", original)


def _recorded_run(monkeypatch, model, layout, prompts, uncond, sampling=GREEDY, speed=None):
    """``generate_tokens`` with guidance 3 over 12 frames, and the guided log-probs it saw."""
    return _recorded(monkeypatch, lambda: generate_tokens(
        model, layout, prompts, 12, unconditional_prompts=uncond, sampling=sampling.replace(guidance_scale=3.0),
        speed=speed))


@pytest.mark.parametrize("guidance", [3.0, 1.0])
def test_log_probs_and_greedy_ids_equal_the_two_call_oracle(setup, captions, monkeypatch, guidance):
    model, tok = setup
    prompts, uncond = _prompts(tok, captions[:4])
    (old_tokens, old_len), old = _recorded(monkeypatch, lambda: two_call_tokens(
        model, tok.layout, prompts, 12, uncond, guidance, GREEDY, min_frames=8))
    (new_tokens, new_len), new = _recorded(monkeypatch, lambda: generate_tokens(
        model, tok.layout, prompts, 12, unconditional_prompts=uncond, min_frames=8,
        sampling=GREEDY.replace(guidance_scale=guidance)))
    assert torch.equal(old_tokens, new_tokens) and torch.equal(old_len, new_len)
    assert len(new) >= 16 and len(old) >= len(new)  # generate may run extra steps it then undoes
    for (ids_old, lp_old), (ids_new, lp_new) in zip(old, new):
        assert torch.equal(ids_old, ids_new)
        finite = torch.isfinite(lp_old)
        assert torch.equal(finite, torch.isfinite(lp_new))
        if guidance == 1.0:  # generate hands the processors raw logits, the loop log-probs
            lp_old = torch.log_softmax(lp_old, -1)
        torch.testing.assert_close(lp_new[finite], lp_old[finite], rtol=0, atol=1e-5)


@pytest.mark.parametrize("guidance", [2.5, 1.0])
@pytest.mark.parametrize("options", [dict(temperature=1.5, top_k=None), dict(temperature=0.8, top_k=5, top_p=0.9)])
def test_sampled_ids_for_a_seed_equal_the_two_call_oracle(setup, captions, options, guidance):
    model, tok = setup
    prompts, uncond = _prompts(tok, captions[:3])
    sampling = SamplingSettings(guidance_scale=guidance, **options)
    torch.manual_seed(7)
    runs = [two_call_tokens(model, tok.layout, prompts, 10, uncond, guidance, sampling)]
    for _ in range(2):
        runs.append(generate_tokens(model, tok.layout, prompts, 10, unconditional_prompts=uncond,
                                    sampling=sampling.replace(seed=7)))
    for tokens, lengths in runs[1:]:
        assert torch.equal(tokens, runs[0][0]) and torch.equal(lengths, runs[0][1])


def test_guided_loop_matches_full_forwards_step_by_step(setup):
    """The KV cache of the doubled batch gives what full forwards of each half give."""
    model, tok = setup
    lay = tok.layout
    cond, unc = [tok.text_prompt("rain on a roof")], [tok.text_prompt(None)]
    ids, unc_ids = torch.tensor(cond), torch.tensor(unc)
    batch = PaddedPrompts.of(cond, unc, lay.pad_id, torch.device("cpu"))
    seq = loop.generate_ids(model, lay, batch, 6, sampling=GREEDY, guidance_scale=2.0)
    with torch.no_grad():
        for t in range(ids.shape[1], seq.shape[1]):
            new = seq[:, ids.shape[1]:t]
            lc = torch.log_softmax(model(torch.cat([ids, new], 1)).logits[:, -1], -1)
            lu = torch.log_softmax(model(torch.cat([unc_ids, new], 1)).logits[:, -1], -1)
            assert int(seq[0, t]) == int((lu + 2.0 * (lc - lu)).argmax())
            if int(seq[0, t]) == lay.audio_end_id:
                assert bool((seq[0, t + 1 :] == lay.pad_id).all())
                break
    with pytest.raises(ValueError, match="needs unconditional prompts exactly when it is not 1"):
        loop.generate_ids(model, lay, PaddedPrompts.of(cond, None, lay.pad_id, torch.device("cpu")), 6,
                          sampling=GREEDY, guidance_scale=2.0)


def test_num_return_sequences_repeat_each_prompt(setup, captions):
    model, tok = setup
    sampling = SamplingSettings(seconds=4 / tok.layout.frame_rate, guidance_scale=2.0, seed=0)
    repeated, repeated_len = text_to_tokens(model, tok, [c for c in captions[:2] for _ in range(3)], sampling=sampling)
    three, three_len = text_to_tokens(model, tok, captions[:2], sampling=sampling.replace(num_return_sequences=3))
    assert three.shape[0] == 6 and torch.equal(three, repeated) and torch.equal(three_len, repeated_len)
    sampled, lengths = text_to_tokens(model, tok, captions[:1], sampling=sampling.replace(
        seconds=6 / tok.layout.frame_rate, temperature=3.0, num_return_sequences=4))
    assert sampled.shape[0] == 4 and bool(((lengths >= 1) & (lengths <= 6)).all())
    assert len({tuple(r.flatten().tolist()) for r in sampled}) > 1  # the copies sample independently


def test_batches_of_prompts_write_what_one_batch_writes_greedily(setup, captions):
    model, tok = setup
    sampling = GREEDY.replace(seconds=5 / tok.layout.frame_rate, guidance_scale=2.0)
    whole = text_to_tokens(model, tok, captions[:5], sampling=sampling)
    split = text_to_tokens(model, tok, captions[:5], sampling=sampling.replace(batch_size=2))
    assert torch.equal(whole[0], split[0]) and torch.equal(whole[1], split[1])


def test_beams_run_without_guidance_and_are_refused_with_it(setup, captions):
    model, tok = setup
    three = SamplingSettings(seconds=3 / tok.layout.frame_rate)
    tokens, lengths = text_to_tokens(model, tok, captions[:2], sampling=three.replace(
        guidance_scale=1.0, do_sample=False, num_beams=3, num_return_sequences=2))
    assert tokens.shape[0] == 4 and bool(((lengths >= 1) & (lengths <= 3)).all())
    with pytest.raises(ValueError, match=r"beam search \(num_beams=2\) cannot be combined with classifier-free"):
        three.replace(guidance_scale=3.0, num_beams=2)
    with pytest.raises(ValueError, match=r"beam search .*guidance_scale=3.0\); use num_beams=1 or guidance_scale=1"):
        text_to_tokens(model, tok, captions[:1], sampling=three.replace(num_beams=2))  # the default guidance of text
    with pytest.raises(ValueError, match="num_return_sequences=3 must be <= num_beams=2"):
        three.replace(guidance_scale=1.0, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="num_return_sequences must be an integer >= 1"):
        three.replace(num_return_sequences=0)
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        three.replace(guidance_scale=float("nan"))


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_progress_bar_counts_frames_and_is_quiet_off_a_terminal(setup, captions, capsys, guidance):
    model, tok = setup
    sampling = GREEDY.replace(seconds=5 / tok.layout.frame_rate, guidance_scale=guidance)
    text_to_tokens(model, tok, captions[:1], sampling=sampling)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    text_to_tokens(model, tok, captions[:1], sampling=sampling, progress=True)
    err = capsys.readouterr().err
    assert "generate" in err and "frame" in err
