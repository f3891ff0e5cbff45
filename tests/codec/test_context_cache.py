"""Cross-attention keys and values computed once per sampling run (``codec.fast.context_cache``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import codec.fast.apply as fast_apply
from codec.fast import fast_forms


def _inputs(config, decoder, windows: int = 2):
    g = torch.Generator().manual_seed(4)
    features = torch.randn(windows, config.window_tokens, 2 * config.feature_dim, generator=g)
    cond, uncond = decoder.context(features)
    x = torch.randn(windows, config.latent_channels, config.latent_time, config.latent_freq, generator=g)
    return cond, uncond, x


def test_each_projection_of_the_context_runs_once_and_gives_what_it_gave(config, decoder, monkeypatch):
    cond, uncond, x = _inputs(config, decoder)
    context = decoder.guidance_context(cond, uncond, 2.0)
    calls: dict[int, int] = {}
    ordinary = nn.Linear.forward

    def counted(self, inputs):
        calls[id(self)] = calls.get(id(self), 0) + 1
        return ordinary(self, inputs)

    with torch.inference_mode():
        with fast_forms(decoder.unet) as others:  # the UNet's other fast forms, without the cache
            expected = [decoder.predict(x, t, context, 2.0) for t in (900, 500, 100)]
        monkeypatch.setattr(nn.Linear, "forward", counted)
        with fast_forms(decoder.unet, context=context) as count:
            cached = [decoder.predict(x, t, context, 2.0) for t in (900, 500, 100)]
            other = decoder.predict(x, 500, context.clone(), 2.0)  # another tensor: computed as usual
    cross = [m for m in decoder.unet.modules() if getattr(m, "is_cross_attention", False)]
    assert len(cross) > 0 and count == others + 2 * len(cross)
    assert [calls[id(m.to_k)] for m in cross] == [2] * len(cross)  # step one, and the clone
    assert calls[id(cross[0].to_q)] == 4
    for a, b in zip(cached, expected, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(other, expected[1])
    assert not any("forward" in m.to_k.__dict__ for m in cross)  # the ordinary forward is back


def test_sampling_gives_the_same_latents_bit_for_bit(config, decoder, monkeypatch):
    cond, uncond, _ = _inputs(config, decoder)
    noise = torch.randn(2, 4, config.latent_channels, config.latent_time, config.latent_freq,
                        generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        cached = decoder.sample(cond, uncond, noise, steps=3)
        # the projections' own forward instead of the remembering one: every other form stays
        monkeypatch.setattr(fast_apply, "remembering_projection", lambda layer, context: type(layer).forward.__get__(layer))
        uncached = decoder.sample(cond, uncond, noise, steps=3)
    assert torch.equal(cached, uncached)


def test_projections_come_back_when_sampling_fails(config, decoder):
    context = decoder.guidance_context(*_inputs(config, decoder)[:2], 2.0)
    with pytest.raises(RuntimeError, match="stop"), torch.no_grad(), fast_forms(decoder.unet, context=context) as n:
        assert n > 0
        raise RuntimeError("stop")
    assert not any("forward" in m.__dict__ for m in decoder.unet.modules())
