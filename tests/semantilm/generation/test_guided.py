"""Guidance in one forward (``guided_generate``) against the two-call processor path."""

import pytest
import torch

from semantilm.generation import guided
from semantilm.generation.generate import generate_tokens, text_to_tokens
from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=128)


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


def _recorded_run(monkeypatch, model, layout, prompts, uncond, mode, **kwargs):
    """Run ``generate_tokens`` and record the scores the constraint processor receives (the guided
    log-probs) and the ids it sees, step by step."""
    seen = []
    original = AudioTokenConstraintLogitsProcessor.__call__

    def recording(self, input_ids, scores):
        seen.append((input_ids.clone(), scores.clone()))
        return original(self, input_ids, scores)

    monkeypatch.setattr(AudioTokenConstraintLogitsProcessor, "__call__", recording)
    out = generate_tokens(model, layout, prompts, 12, unconditional_prompts=uncond, guidance_scale=3.0,
                          guidance_mode=mode, **kwargs)
    monkeypatch.setattr(AudioTokenConstraintLogitsProcessor, "__call__", original)
    return out, seen


def test_one_forward_log_probs_and_greedy_ids_equal_the_two_call_path(setup, captions, monkeypatch):
    model, tok = setup
    prompts, uncond = _prompts(tok, captions[:4])
    (old_tokens, old_len), old = _recorded_run(monkeypatch, model, tok.layout, prompts, uncond, "two_calls",
                                               do_sample=False)
    (new_tokens, new_len), new = _recorded_run(monkeypatch, model, tok.layout, prompts, uncond, "one_forward",
                                               do_sample=False)
    assert torch.equal(old_tokens, new_tokens) and torch.equal(old_len, new_len)
    assert len(new) >= 20 and len(old) >= len(new)  # generate may run extra steps it then undoes
    for (ids_old, lp_old), (ids_new, lp_new) in zip(old, new):
        assert torch.equal(ids_old, ids_new)
        finite = torch.isfinite(lp_old)
        assert torch.equal(finite, torch.isfinite(lp_new))
        torch.testing.assert_close(lp_new[finite], lp_old[finite], rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampling", [dict(temperature=1.5), dict(temperature=0.8, top_k=5, top_p=0.9)])
def test_sampled_ids_for_a_seed_equal_the_two_call_path(setup, captions, sampling):
    model, tok = setup
    prompts, uncond = _prompts(tok, captions[:3])
    runs = []
    for mode in ("two_calls", "one_forward", "one_forward"):
        torch.manual_seed(7)
        runs.append(generate_tokens(model, tok.layout, prompts, 10, unconditional_prompts=uncond,
                                    guidance_scale=2.5, guidance_mode=mode, **sampling))
    for tokens, lengths in runs[1:]:
        assert torch.equal(tokens, runs[0][0]) and torch.equal(lengths, runs[0][1])


def test_guided_generate_matches_full_forwards_step_by_step(setup):
    """The KV cache of the doubled batch gives what full forwards of each half give."""
    model, tok = setup
    lay = tok.layout
    cond = [tok.text_prompt("rain on a roof")]
    unc = [tok.text_prompt(None)]
    ids = torch.tensor(cond)
    seq = guided.guided_generate(model, ids, torch.ones_like(ids), torch.tensor(unc), torch.ones(1, len(unc[0]),
                                 dtype=torch.long), 2.0, 6, lay.audio_end_id, lay.pad_id, do_sample=False)
    with torch.no_grad():
        for t in range(ids.shape[1], seq.shape[1]):
            new = seq[:, ids.shape[1]:t]
            lc = torch.log_softmax(model(torch.cat([ids, new], 1)).logits[:, -1], -1)
            lu = torch.log_softmax(model(torch.cat([torch.tensor(unc), new], 1)).logits[:, -1], -1)
            assert int(seq[0, t]) == int((lu + 2.0 * (lc - lu)).argmax())
            if int(seq[0, t]) == lay.audio_end_id:
                assert bool((seq[0, t + 1 :] == lay.pad_id).all())
                break


def test_num_return_sequences_repeat_each_prompt(setup, captions):
    model, tok = setup
    torch.manual_seed(0)
    repeated, repeated_len = text_to_tokens(model, tok, [c for c in captions[:2] for _ in range(3)], 4,
                                            guidance_scale=2.0)
    torch.manual_seed(0)
    three, three_len = text_to_tokens(model, tok, captions[:2], 4, guidance_scale=2.0, num_return_sequences=3)
    assert three.shape[0] == 6 and torch.equal(three, repeated) and torch.equal(three_len, repeated_len)
    torch.manual_seed(0)
    sampled, lengths = text_to_tokens(model, tok, captions[:1], 6, guidance_scale=2.0, temperature=3.0,
                                      num_return_sequences=4)
    assert sampled.shape[0] == 4 and bool(((lengths >= 1) & (lengths <= 6)).all())
    assert len({tuple(r.flatten().tolist()) for r in sampled}) > 1  # the copies sample independently


def test_beams_run_without_guidance_and_are_refused_with_it(setup, captions):
    model, tok = setup
    tokens, lengths = text_to_tokens(model, tok, captions[:2], 3, guidance_scale=1.0, do_sample=False,
                                     num_beams=3, num_return_sequences=2)
    assert tokens.shape[0] == 4 and bool(((lengths >= 1) & (lengths <= 3)).all())
    with pytest.raises(ValueError, match="beam search .* cannot be combined with classifier-free guidance"):
        text_to_tokens(model, tok, captions[:1], 3, guidance_scale=3.0, num_beams=2)
    with pytest.raises(ValueError, match="num_return_sequences=3 must be <= num_beams=2"):
        text_to_tokens(model, tok, captions[:1], 3, guidance_scale=1.0, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="num_return_sequences must be an integer >= 1"):
        text_to_tokens(model, tok, captions[:1], 3, num_return_sequences=0)
    with pytest.raises(ValueError, match="guidance_mode must be one of"):
        text_to_tokens(model, tok, captions[:1], 3, guidance_mode="fast")
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        text_to_tokens(model, tok, captions[:1], 3, guidance_scale=float("nan"))


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_progress_bar_counts_frames_and_is_quiet_off_a_terminal(setup, captions, capsys, guidance):
    model, tok = setup
    text_to_tokens(model, tok, captions[:1], 5, guidance_scale=guidance, do_sample=False)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    text_to_tokens(model, tok, captions[:1], 5, guidance_scale=guidance, do_sample=False, progress=True)
    err = capsys.readouterr().err
    assert "generate" in err and "frame" in err
