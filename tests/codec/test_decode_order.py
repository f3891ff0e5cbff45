"""One window loop, one noise order: the same tokens and seed give the same audio through
``SemantiCodec.decode``, ``DiffusionDecoder.decode``, a ``WindowStream`` fed in any pieces, and recorded
noise in the documented order. The embedded tiny codec (trained: its audio follows the noise), CPU.

Equality is exact where the UNet runs the same batches (a whole decode and a stream fed whole run one
group of every window, ``batch_size`` per call). A stream fed piece by piece draws the same noise but
runs its windows in other groups, so other UNet batches: equal up to float noise (1e-5 here, against
differences of order 0.1 between two noise orders).
"""

from __future__ import annotations

import pytest
import torch

from codec import DecodeSettings, SemantiCodec
from codec.decode_stream import WindowStream, open_decode_stream
from codec.sampling import num_noise_draws

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LENGTHS = (75, 40)  # token frames: 3 and 2 decoder windows of 32 frames (30 apart) in the tiny codec
SETTINGS = {
    "ddim": DecodeSettings(sampler="ddim", steps=2),  # stochastic (eta 1): every step draws noise
    "dpmsolver++": DecodeSettings(sampler="dpmsolver++", steps=2),  # deterministic: x_T only
}
FLOAT_NOISE = 1e-5


@pytest.fixture(scope="module")
def codec() -> SemantiCodec:
    return SemantiCodec.from_pretrained("tiny")


@pytest.fixture(scope="module")
def tokens(codec) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    t = max(LENGTHS)
    return torch.stack([torch.randint(0, codec.semantic_vocab_size, (len(LENGTHS), t), generator=g),
                        torch.randint(0, codec.acoustic_vocab_size, (len(LENGTHS), t), generator=g)], dim=-1)


def seeded() -> torch.Generator:
    return torch.Generator().manual_seed(5)


def clips(out) -> list[torch.Tensor]:
    return out.unbatch() if hasattr(out, "unbatch") else out


def feed(stream: WindowStream, rows: list[torch.Tensor], schedule: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """Feed ``rows`` by ``schedule`` (frames of every clip at each feed, growing; the last entry is the
    whole clips) and return each clip's pieces joined."""
    audio: list[list[torch.Tensor]] = [[] for _ in rows]
    for frames in schedule:
        ended = [n >= r.shape[0] for n, r in zip(frames, rows, strict=True)]
        for piece in stream.feed([r[:n] for r, n in zip(rows, frames, strict=True)], ended):
            audio[piece.row].append(piece.audio)
    assert stream.done
    return [torch.cat(a) for a in audio]


def irregular(lengths: tuple[int, ...], pieces: list[int], lead: int | None = None) -> list[tuple[int, ...]]:
    """Frames per feed: every clip grows by the next of ``pieces`` (cycling); with ``lead``, only that clip
    grows until it has ended, then the others."""
    schedule, frames, i = [], [0] * len(lengths), 0
    while any(f < n for f, n in zip(frames, lengths, strict=True)):
        growing = [b for b in range(len(lengths)) if frames[b] < lengths[b]]
        if lead is not None and lead in growing:
            growing = [lead]
        for b in growing:
            frames[b] = min(lengths[b], frames[b] + pieces[i % len(pieces)])
            i += 1
        schedule.append(tuple(frames))
    return schedule


@pytest.mark.parametrize("sampler", list(SETTINGS))
def test_every_decode_path_gives_the_same_audio_for_the_same_seed(codec, tokens, sampler):
    settings = SETTINGS[sampler]
    rows = [tokens[b, :n] for b, n in enumerate(LENGTHS)]
    reference = codec.decode(tokens, LENGTHS, settings=settings, generator=seeded(), batch_size=8).unbatch()
    decoder, tables = codec.decoder, (codec.acoustic.codebook, codec.semantic.centroids)

    same_batches = {
        "DiffusionDecoder.decode": decoder.decode(tokens, *tables, LENGTHS, settings, generator=seeded(), batch_size=8),
        "stream fed whole": feed(open_decode_stream(codec, 2, settings, generator=seeded()), rows, [LENGTHS]),
    }
    for name, out in same_batches.items():
        for a, b in zip(clips(out), reference, strict=True):
            assert torch.equal(a, b), name

    other_batches = {
        f"pieces {pieces}, lead {lead}": irregular(LENGTHS, pieces, lead)
        for pieces, lead in (([3, 7, 1, 12, 5], None), ([2, 31, 9], 0), ([11, 4], 1))
    }
    for name, schedule in other_batches.items():
        stream = WindowStream(decoder, *tables, 2, settings, generator=seeded(), batch_size=8)
        for a, b in zip(feed(stream, rows, schedule), reference, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=FLOAT_NOISE, msg=name)


@pytest.mark.parametrize("sampler", list(SETTINGS))
def test_recorded_noise_is_taken_window_by_window_then_clip_by_clip(codec, tokens, sampler):
    """``noise[i]`` is the i-th window in the order window 0 of every clip, window 1 of every clip, ...:
    the generator's own order. The order clip by clip gives other audio, and a clip decoded alone with
    its rows of the noise gives its audio of the batch."""
    settings = SETTINGS[sampler]
    reference = codec.decode(tokens, LENGTHS, settings=settings, generator=seeded())
    plan = codec.decoder.plan_windows(LENGTHS)
    assert plan.clip == [0, 1, 0, 1, 0]
    draws = num_noise_draws(settings.sampler, settings.steps)
    noise = codec.decoder.draw_noise(len(plan), draws, seeded(), "cpu")
    recorded = codec.decode(tokens, LENGTHS, settings=settings, noise=noise)
    assert torch.equal(recorded.audio, reference.audio)

    clip_by_clip = codec.decode(tokens, LENGTHS, settings=settings, noise=noise[[0, 3, 1, 4, 2]])
    assert (clip_by_clip.audio - reference.audio).abs().max() > 100 * FLOAT_NOISE

    for b, n in enumerate(LENGTHS):
        rows = [i for i, clip in enumerate(plan.clip) if clip == b]
        alone = codec.decode(tokens[b : b + 1, :n], settings=settings, noise=noise[rows])
        torch.testing.assert_close(alone.audio[0], reference.unbatch()[b], rtol=0, atol=FLOAT_NOISE)


def test_batch_size_moves_floats_only(codec, tokens):
    settings = SETTINGS["ddim"]
    runs = [codec.decode(tokens, LENGTHS, settings=settings, generator=seeded(), batch_size=size).audio
            for size in (1, 2, 8)]
    for run in runs[:2]:
        torch.testing.assert_close(run, runs[2], rtol=0, atol=FLOAT_NOISE)
