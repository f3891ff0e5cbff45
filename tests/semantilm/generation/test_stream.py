"""Streaming generation with the tiny SemantiCodec (1.28 s decoder windows) and a tiny random LM:
chunks while the LM writes, and exactly the samples of the whole call."""

from __future__ import annotations

import threading

import pytest
import torch

from codec import DecodeSettings, SemantiCodec
from semantilm.generation.generate import continue_audio, generate_audio
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.stream import collect_chunks, continue_audio_stream, generate_audio_stream
from semantilm.generation.token_generation import text_to_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=256)
STEPS = DecodeSettings(steps=2)  # DDIM with eta 1: every step draws noise, so the draw order matters
SECONDS = 3.0  # 75 frames: decoder windows (0, 32), (30, 62), (60, 75)
ONE = SamplingSettings(seconds=SECONDS, seed=1)


@pytest.fixture(scope="module")
def codec() -> SemantiCodec:
    return SemantiCodec.from_pretrained("tiny")


def _lm(codec, sp_model_path: str, pattern: str = "interleave"):
    """A tiny LM and its tokenizer; the LM never ends a clip early (a forward hook pushes the
    ``<|audio_end|>`` logit down until the constraint forces it, and with ``semantic_first`` the
    acoustic logits too, until the semantic ids reach the limit), so every clip has three windows."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size(), pattern=pattern)
    model = build_lm(layout, TINY, seed=0).eval()

    def no_early_end(module, args, output):
        output.logits[..., layout.audio_end_id] -= 50.0
        if pattern == "semantic_first":
            output.logits[..., layout.acoustic_offset : layout.vocab_size] -= 50.0
        return output

    model.register_forward_hook(no_early_end)
    return model, AudioTextTokenizer(sp, layout)


@pytest.fixture(scope="module")
def lm(codec, sp_model_path):
    return _lm(codec, sp_model_path)


def _same_samples(streamed: torch.Tensor, whole: torch.Tensor) -> None:
    """The stream decodes windows in groups, ``codec.decode`` all at once: the same draws, the same
    samples up to the float noise of batching windows differently."""
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-5)


def _clip_audio(chunks, index: int) -> torch.Tensor:
    mine = [c for c in chunks if c.index == index]
    assert [c.final for c in mine] == [False] * (len(mine) - 1) + [True]
    assert [c.offset for c in mine] == [sum(c.audio.shape[0] for c in mine[:k]) for k in range(len(mine))]
    return torch.cat([c.audio for c in mine])


@pytest.mark.parametrize(("pattern", "guidance"), [("interleave", 3.0), ("semantic_first", 1.0)])
def test_chunks_concatenate_to_the_whole_waveform_and_tokens(lm, codec, captions, sp_model_path, pattern, guidance):
    """Guidance 3 runs the doubled batch, guidance 1 the captioned rows alone; with ``semantic_first``
    frames are complete only once the acoustic ids come."""
    model, tok = lm if pattern == "interleave" else _lm(codec, sp_model_path, pattern)
    sampling = SamplingSettings(seconds=SECONDS, seed=0, temperature=0.8, guidance_scale=guidance)
    chunks = list(generate_audio_stream(model, tok, codec, [captions[0], ""], sampling=sampling, decode=STEPS))
    whole = generate_audio(model, tok, codec, [captions[0], ""], sampling=sampling, decode=STEPS)
    assert whole.token_lengths.tolist() == [75, 75]
    for i in range(2):
        _same_samples(_clip_audio(chunks, i), whole.audio[i, : whole.lengths[i]])
        assert torch.equal([c for c in chunks if c.final and c.index == i][0].tokens, whole.tokens[i])
    assert whole.lengths.tolist() == [codec.config.num_samples(75)] * 2
    # The LM writes what it writes without streaming for the same seed.
    tokens, _ = text_to_tokens(model, tok, [captions[0], ""], sampling=sampling)
    assert torch.equal(tokens, whole.tokens)


def test_first_chunk_comes_while_the_lm_is_still_generating(lm, codec, captions):
    """The LM is held at its 100th of 151 steps (about 50 of 75 frames: window 1 is not complete)
    until a chunk arrives; without streaming no chunk could come and the hold would time out."""
    model, tok = lm
    steps, release = [], threading.Event()

    def hold(module, args):
        steps.append(1)
        if len(steps) == 100 and not release.wait(timeout=300):
            raise RuntimeError("no audio chunk arrived while the LM was held")

    handle = model.register_forward_pre_hook(hold)
    try:
        stream = generate_audio_stream(model, tok, codec, [captions[1]], sampling=ONE, decode=STEPS)
        first = next(stream)
        steps_at_first = len(steps)
        release.set()
        chunks = [first, *stream]
    finally:
        release.set()
        handle.remove()
    assert steps_at_first == 100 < len(steps)
    assert first.index == 0 and not first.final and 0 < first.audio.shape[0] < codec.config.num_samples(32)
    assert len(chunks) >= 2
    whole = generate_audio(model, tok, codec, [captions[1]], sampling=ONE, decode=STEPS)
    _same_samples(_clip_audio(chunks, 0), whole.audio[0])  # the hold changed no sample


def test_continue_audio_stream_equals_continue_audio(lm, codec):
    model, tok = lm
    clip = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    kwargs = dict(sampling=SamplingSettings(seconds=1.6, seed=2), decode=STEPS)
    stream = continue_audio_stream(model, tok, codec, [clip, clip[:8000]], 16000, **kwargs)
    chunks = list(stream)
    whole = continue_audio(model, tok, codec, [clip, clip[:8000]], 16000, **kwargs)
    prompt_frames = [codec.config.num_frames(16000), codec.config.num_frames(8000)]
    assert stream.prompt_samples == whole.prompt_lengths.tolist() == [f * codec.sample_rate // 25 for f in prompt_frames]
    for i, frames in enumerate(prompt_frames):
        assert whole.token_lengths[i] == frames + 40
        audio = _clip_audio(chunks, i)
        _same_samples(audio, whole.audio[i, : whole.lengths[i]])
        assert audio.shape[0] == codec.config.num_samples(frames + 40)


def test_closing_the_stream_stops_the_lm_and_errors_reach_the_caller(lm, codec, captions):
    model, tok = lm
    stream = generate_audio_stream(model, tok, codec, [captions[2]], sampling=ONE.replace(seed=3), decode=STEPS)
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "semantilm-lm"]
    with pytest.raises(ValueError, match="context of 256"):
        next(generate_audio_stream(model, tok, codec, [captions[2]], sampling=SamplingSettings(seconds=10.0)))
    with pytest.raises(ValueError, match=r"beam search \(num_beams=2\) cannot stream"):
        generate_audio_stream(model, tok, codec, ["a dog"], sampling=SamplingSettings(guidance_scale=1, num_beams=2))
    with pytest.raises(TypeError, match="list of captions"):
        generate_audio_stream(model, tok, codec, "a dog")  # checked before the first chunk
    with pytest.raises(ValueError, match="global generator"):
        generate_audio_stream(model, tok, codec, ["a dog"], generator=torch.default_generator)
    with pytest.raises(ValueError, match="before every clip's final chunk"):
        collect_chunks(iter([]))


@pytest.mark.parametrize("sampler", ["ddim", "dpm++2m"])  # DDIM with eta 1 draws at every step; DPM only x_T
def test_saved_tokens_decode_again_to_the_generated_audio(lm, codec, captions, sampler):
    """``generate_audio`` runs the LM in the calling thread, then one ``codec.decode`` of every clip:
    decoding its tokens again with the same generator gives the same samples."""
    model, tok = lm
    threads = []
    handle = model.register_forward_pre_hook(lambda module, args: threads.append(threading.current_thread()))
    d = DecodeSettings(sampler=sampler, steps=2)
    try:
        out = generate_audio(model, tok, codec, [captions[0], captions[3]], sampling=SamplingSettings(seconds=1.5, seed=4),
                             decode=d, generator=torch.Generator().manual_seed(5))
    finally:
        handle.remove()
    assert threads and set(threads) == {threading.current_thread()}
    assert out.token_lengths.tolist() == [38, 38]  # two decoder windows per clip
    again = codec.decode(out.tokens, out.token_lengths, d, generator=torch.Generator().manual_seed(5))
    assert torch.equal(again.audio, out.audio) and torch.equal(again.lengths, out.lengths)


def test_a_stream_of_two_clips_has_the_tokens_and_lengths_of_generate_audio(lm, codec, captions):
    model, tok = lm
    sampling, fast = SamplingSettings(seconds=1.5, seed=6, temperature=0.9), DecodeSettings(sampler="dpm++2m", steps=1)
    chunks = list(generate_audio_stream(model, tok, codec, captions[2:4], sampling=sampling, decode=fast))
    whole = generate_audio(model, tok, codec, captions[2:4], sampling=sampling, decode=fast)
    for i in range(2):
        assert torch.equal([c for c in chunks if c.final and c.index == i][0].tokens, whole.tokens[i])
        assert _clip_audio(chunks, i).shape[0] == whole.lengths[i]
