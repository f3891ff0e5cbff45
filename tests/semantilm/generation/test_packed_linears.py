"""Packed oneDNN linear layers while an LM generates on the CPU (``packed_linears``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.packed_linears import MIN_WEIGHT_ELEMENTS, packed_linears
from semantilm.generation.settings import SamplingSettings
from semantilm.generation.token_generation import generate_tokens
from semantilm.models.lm import LMConfig, build_lm
from semantilm.tokens.layout import AudioTokenLayout

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(512, 1024), nn.GELU(), nn.Linear(1024, 512, bias=False), nn.Linear(512, 8))


def test_large_layers_are_packed_and_give_the_same_outputs_then_are_restored():
    net, x = _net(), torch.randn(3, 5, 512)
    with torch.inference_mode():
        expected = net(x)
        with packed_linears(net) as count:
            packed = net(x)
            assert all("forward" in m.__dict__ for m in net[:3:2])
    assert count == 2  # the 512 x 8 layer is too small to gain anything
    assert net[2].weight.numel() >= MIN_WEIGHT_ELEMENTS > net[3].weight.numel()
    torch.testing.assert_close(packed, expected, rtol=1e-5, atol=1e-5)
    assert not any("forward" in m.__dict__ for m in net)  # the ordinary forward is back
    with torch.inference_mode():
        assert torch.equal(net(x), expected)


def test_gradients_and_other_dtypes_take_the_ordinary_path():
    net, x = _net(), torch.randn(2, 512)
    with packed_linears(net):
        net(x).sum().backward()  # autograd on: F.linear, so gradients flow
        with torch.inference_mode():
            assert net.double()(x.double()).dtype == torch.float64
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    with pytest.raises(TypeError, match="packed_linears must be True or False, got '0'"):
        LMSpeed(packed_linears="0")


def test_layers_come_back_when_generation_fails():
    net = _net()
    with pytest.raises(RuntimeError, match="boom"), packed_linears(net):
        raise RuntimeError("boom")
    assert not any("forward" in m.__dict__ for m in net)


def test_generation_writes_the_same_tokens_with_and_without_packing(monkeypatch):
    import semantilm.generation.packed_linears as packing

    """An LM wide enough for its layers to be packed; greedy, so only a changed id could differ."""
    layout = AudioTokenLayout(text_vocab_size=100, semantic_vocab_size=512, acoustic_vocab_size=256)
    size = LMConfig(hidden_size=256, num_hidden_layers=1, num_attention_heads=4, intermediate_size=1024,
                    max_position_embeddings=128)
    model = build_lm(layout, size, seed=0).eval()
    with packed_linears(model) as count:
        assert count >= 3  # the MLP's three layers at least
    prompts = [[3, 5, 6, layout.audio_start_id], [7, layout.audio_start_id]]
    packed = []
    real = packing.packed_linears

    def counting(net):
        block = real(net)
        packed.append(block)
        return block

    monkeypatch.setattr(packing, "packed_linears", counting)
    runs = [generate_tokens(model, layout, prompts, 12, sampling=SamplingSettings(do_sample=False),
                            speed=LMSpeed(packed_linears=switch)) for switch in (True, False)]
    assert len(packed) == 1  # LMSpeed(packed_linears=False) packs nothing
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_a_build_whose_ops_fail_keeps_f_linear(monkeypatch):
    import codec.fast.onednn_linear as onednn
    import semantilm.generation.packed_linears as packing

    assert onednn.onednn_linear_available.__wrapped__()

    def broken(*args, **kwargs):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", broken)
    assert not onednn.onednn_linear_available.__wrapped__()
    monkeypatch.setattr(packing, "onednn_linear_available", lambda: False)
    with packed_linears(_net()) as count:
        assert count == 0
