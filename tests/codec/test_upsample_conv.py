"""x2 nearest upsampling + 3x3 convolution in the sub-pixel form (the fast form of diffusers'
``Upsample2D``) computes the same function."""

from __future__ import annotations

import warnings

import pytest
import torch
from diffusers.models.upsampling import Upsample2D

from codec.fast import FastFormSkipped, fast_forms


def _layer(channels: int = 6, out: int = 5, seed: int = 0, **kwargs) -> Upsample2D:
    torch.manual_seed(seed)
    return Upsample2D(channels, use_conv=True, out_channels=out, **kwargs).eval()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(1, 1), (4, 7), (5, 2)])
def test_same_output_as_upsampling_then_convolving(channels_last, size):
    layer = _layer()
    x = torch.randn(2, 6, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = layer(x)
        with fast_forms(layer) as n:
            y = layer(x)
    assert n == 1
    assert y.shape == expected.shape == (2, 5, 2 * size[0], 2 * size[1])
    if size != (1, 1):  # a 1 x 1 image is contiguous in both layouts
        assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_an_explicit_output_size_takes_the_ordinary_path():
    layer = _layer()
    x = torch.randn(1, 6, 3, 3)
    with torch.no_grad():
        expected = layer(x, (7, 6))
        with fast_forms(layer):
            y = layer(x, (7, 6))
    assert torch.equal(y, expected)


def test_forward_restored_and_nothing_changes_with_gradients():
    layer = _layer()
    with torch.no_grad(), fast_forms(layer):
        pass
    assert "forward" not in layer.__dict__
    with fast_forms(layer) as n:
        layer(torch.randn(1, 6, 2, 2)).sum().backward()
    assert n == 0 and layer.conv.weight.grad is not None


def test_transposed_and_plain_upsamplers_are_not_candidates():
    model = torch.nn.Sequential(Upsample2D(4, use_conv_transpose=True), Upsample2D(4, use_conv=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastFormSkipped)
        with torch.no_grad(), fast_forms(model) as n:
            assert n == 0


def test_an_upsampler_with_another_convolution_is_named_in_a_warning():
    model = torch.nn.Sequential(_layer(kernel_size=5, padding=2))
    with torch.no_grad(), pytest.warns(FastFormSkipped, match=r"Sequential\.0 \(the sub-pixel form takes a 3x3"):
        with fast_forms(model) as n:
            assert n == 0
