"""Window-by-window decoding of growing token sequences (``codec.decode_stream``), tiny decoder, CPU."""

from __future__ import annotations

import pytest
import torch

from codec.decode_stream import WindowStream, open_decode_stream
from codec.sampling import DecodeSettings
from codec.windowing import overlap_add, split_windows
from tests.fake_codec import FakeCodec

DDIM = DecodeSettings(steps=2)  # stochastic (eta 1): every step draws noise, so the draw order matters


def _tokens(config, frames: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, config.semantic_codebook_size, (frames,), generator=g),
                        torch.randint(0, config.acoustic_codebook_size, (frames,), generator=g)], dim=-1)


def _stream(decoder, tables, rows: int, batch_size: int = 8) -> WindowStream:
    return WindowStream(decoder, *tables, rows, DDIM, generator=torch.Generator().manual_seed(3), batch_size=batch_size)


def _play(stream: WindowStream, clips: list[torch.Tensor], step: int | None) -> tuple[list[torch.Tensor], list[int]]:
    """Feed ``clips`` ``step`` frames at a time (None: whole, at once); (audio per clip, pieces per clip)."""
    audio = [[] for _ in clips]
    counts, lasts = [0] * len(clips), [0] * len(clips)
    longest = max(c.shape[0] for c in clips)
    for n in ([longest] if step is None else range(step, longest + step, step)):
        pieces = stream.feed([c[:n] for c in clips], [n >= c.shape[0] for c in clips])
        assert len({p.row for p in pieces}) == len(pieces)  # one piece per clip and feed at most
        for p in pieces:
            audio[p.row].append(p.audio)
            counts[p.row] += 1
            lasts[p.row] += p.last
            assert not p.last or n >= clips[p.row].shape[0]
    assert stream.done and lasts == [1] * len(clips)
    return [torch.cat(a) for a in audio], counts


def test_cross_fade_equals_overlap_add_of_the_window_waveforms(config, decoder, tables):
    clip = _tokens(config, 150, seed=0)  # windows (0, 64), (60, 124), (120, 150)
    streamed, counts = _play(_stream(decoder, tables, 1, batch_size=1), [clip], step=7)
    assert counts[0] >= 3  # a piece per window at least: audio came before the clip ended
    generator = torch.Generator().manual_seed(3)  # each window alone, in order: the stream's draws and batches
    waves = []
    spans = split_windows(150, config.window_tokens, config.window_overlap_tokens)
    used = decoder.used_samples(decoder.plan_windows([150]), [150])  # the last window's vocoder is cut as decode cuts it
    with torch.inference_mode():  # as the stream runs
        for (start, stop), samples in zip(spans, used):
            latents, _, _ = decoder.decode_latents(clip[None, start:stop], *tables, None, DDIM, generator=generator)
            waves.append(decoder.latents_to_waveform(latents, [samples])[1][0])
    expected = overlap_add(torch.stack(waves), config.window_overlap_samples)[: config.num_samples(150)]
    assert torch.equal(streamed[0], expected)
    # decode() runs the three windows as one UNet batch: the same waveform up to float noise.
    whole = decoder.decode(clip[None], *tables, settings=DDIM, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(streamed[0], whole.audio[0], rtol=0, atol=1e-4)


def test_what_comes_out_does_not_depend_on_how_often_frames_are_fed(config, decoder, tables):
    """Fed whole, the stream is decode (the same UNet batches: equal). Fed piece by piece it draws the
    same noise but groups windows otherwise: equal up to the float noise of other UNet batches."""
    clips = [_tokens(config, 150, seed=1), _tokens(config, 40, seed=2), _tokens(config, 64, seed=3)]
    at_once, _ = _play(_stream(decoder, tables, 3), clips, step=None)
    tokens = torch.zeros(3, 150, 2, dtype=torch.long)
    for b, clip in enumerate(clips):
        tokens[b, : clip.shape[0]] = clip
    whole = decoder.decode(tokens, *tables, [150, 40, 64], DDIM, generator=torch.Generator().manual_seed(3),
                           batch_size=8)
    for a, b in zip(at_once, whole.unbatch()):
        assert torch.equal(a, b)
    for step in (1, 23):
        fed, _ = _play(_stream(decoder, tables, 3), clips, step=step)
        for a, b in zip(fed, at_once):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert [a.shape[0] for a in at_once] == [config.num_samples(n) for n in (150, 40, 64)]


def test_groups_double_so_a_long_clip_takes_few_decoder_calls(config, decoder, tables, monkeypatch):
    """Windows per clip and group: 1, 2, 4, ... up to batch_size // rows; the first audio still
    comes after one window, and what comes out is what a stream of one window per group gives."""
    step, window = config.window_tokens - config.window_overlap_tokens, config.window_tokens
    clip = _tokens(config, 8 * step + window, seed=6)  # 9 windows
    calls: list[int] = []  # windows per UNet sampling call
    sample = decoder.sample

    def counted(cond, *args, **kwargs):
        calls.append(cond.shape[0])
        return sample(cond, *args, **kwargs)

    monkeypatch.setattr(decoder, "sample", counted)
    stream = _stream(decoder, tables, 1, batch_size=4)
    assert [p.audio.shape[0] > 0 for p in stream.feed([clip[:window]], [False])] == [True]
    assert calls == [1] and stream.frames_needed() == 2 * step  # windows 1 and 2 come next, together
    grouped, _ = _play(_stream(decoder, tables, 1, batch_size=4), [clip], step=9)
    assert calls[1:] == [1, 2, 4, 2]  # the last group holds the two windows that are left
    calls.clear()
    alone, _ = _play(_stream(decoder, tables, 1, batch_size=1), [clip], step=None)
    assert calls == [1] * 9
    torch.testing.assert_close(grouped[0], alone[0], rtol=0, atol=1e-4)  # batching's float noise only
    calls.clear()
    _play(_stream(decoder, tables, 1, batch_size=4), [clip], step=None)
    assert calls == [4, 4, 1]  # fed whole: every window in one group, batch_size per UNet call


def test_frames_needed_and_bad_feeds(config, decoder, tables):
    stream = _stream(decoder, tables, 2)
    clips = [_tokens(config, 70, seed=4), _tokens(config, 70, seed=5)]
    assert stream.feed([clips[0][:10], clips[1][:30]], [False, False]) == []
    assert stream.frames_needed() == config.window_tokens - 10
    with pytest.raises(ValueError, match="only grow"):
        stream.feed([clips[0][:5], clips[1][:30]], [False, False])
    with pytest.raises(ValueError, match="changed"):
        stream.feed([clips[1][:12], clips[1][:30]], [False, False])
    bad = clips[0][:10].clone()
    bad[3, 1] = config.acoustic_codebook_size
    with pytest.raises(ValueError, match=r"acoustic token ids must be in \[0, "):
        _stream(decoder, tables, 1).feed([bad], [False])
    with pytest.raises(ValueError, match="ended without frames"):
        _stream(decoder, tables, 1).feed([clips[0][:0]], [True])
    with pytest.raises(ValueError, match="for 2 clips"):
        stream.feed([clips[0]], [True])
    with pytest.raises(ValueError, match="rows must be a positive int"):
        WindowStream(decoder, *tables, 0)


def test_only_codecs_with_a_diffusion_decoder_stream():
    assert open_decode_stream(FakeCodec(), 2) is None
