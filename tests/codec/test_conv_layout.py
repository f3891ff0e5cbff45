"""1-D convolutions routed through channels-last 2-D convolutions (their fast form) compute the same function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from codec import fast_paths
from codec.config import SemantiCodecConfig
from codec.fast import FastFormSkipped, fast_forms
from codec.vocoder import build_vocoder, vocode


def _stack() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(3, 8, 5, padding=4, dilation=2),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose1d(8, 6, 7, stride=3, padding=2, output_padding=1),
        nn.Conv1d(6, 6, 3, stride=2, padding=1, groups=3, bias=False),
        nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1, groups=2, dilation=2),
        nn.Conv1d(4, 2, 3, padding=1, padding_mode="reflect"),  # not zero padding: keeps its plain forward
    ).eval()


def test_same_outputs_and_forwards_restored():
    model = _stack()
    x = torch.randn(2, 3, 50)
    with torch.no_grad():
        plain = model(x)
        with pytest.warns(FastFormSkipped, match=r"Sequential\.5 \(padding_mode 'reflect'"), fast_forms(model) as n:
            routed = model(x)
        after = model(x)
    assert n == 4
    assert routed.shape == plain.shape
    torch.testing.assert_close(routed, plain, atol=1e-5, rtol=1e-5)
    assert torch.equal(after, plain)
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_nothing_changes_while_gradients_are_enabled():
    model = _stack()
    x = torch.randn(1, 3, 20)
    with fast_forms(model) as n:
        y = model(x)
    assert n == 0
    y.sum().backward()
    assert model[0].weight.grad is not None


def test_vocode_matches_the_plain_vocoder(monkeypatch):
    import codec.fast.apply as fast_apply

    monkeypatch.setattr(fast_apply, "hifigan_refusal", lambda vocoder: "the per-layer forms are under test here")
    config = SemantiCodecConfig.tiny(100)
    torch.manual_seed(1)
    vocoder = build_vocoder(config).eval()
    mel = torch.randn(2, 30, config.vae_mel_bins)
    seen = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append("forward" in module.__dict__) if isinstance(module, nn.Conv1d) else None)
    try:
        with torch.inference_mode():
            plain = vocoder(mel)
            with fast_paths(False):
                switched_off = vocode(vocoder, config, mel)
            off_calls, seen[:] = list(seen), []
            routed = vocode(vocoder, config, mel)
    finally:
        hook.remove()
    assert off_calls and not any(off_calls)  # every Conv1d ran its class's forward
    assert seen and all(seen)  # every Conv1d ran its fast form
    assert torch.equal(switched_off, plain.reshape(switched_off.shape))
    assert routed.shape == plain.shape
    assert (routed - plain).abs().max() <= 1e-5 * plain.abs().max()
