"""The vocoder's whole-model fast form (``codec.fast.hifigan``) computes what ``SpeechT5HifiGan``
computes, for several upsampling stages and residual blocks, batched or not; it steps aside (its
layers then take their own forms) where it cannot apply. And ``keep_freed_memory`` checks its input."""

from __future__ import annotations

import pytest
import torch
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

import codec
from codec.fast import fast_forms, keep_freed_memory
from codec.fast.hifigan import hifigan_refusal

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _vocoder(**overrides) -> SpeechT5HifiGan:
    settings = dict(model_in_dim=16, upsample_initial_channel=32, upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4],
                    resblock_kernel_sizes=[3, 5, 7], resblock_dilation_sizes=[[1, 3], [1, 3], [1, 5]],
                    normalize_before=True, leaky_relu_slope=0.1)
    torch.manual_seed(0)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**{**settings, **overrides})).eval()
    with torch.no_grad():
        vocoder.mean.normal_()
        vocoder.scale.uniform_(0.5, 2.0)
    return vocoder


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("overrides", [{}, {"upsample_rates": [160], "upsample_kernel_sizes": [320],
                                            "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
                                            "normalize_before": False}], ids=["two-stages", "one-stage"])
def test_the_whole_model_form_gives_the_plain_output(batched, overrides):
    vocoder = _vocoder(**overrides)
    mel = torch.randn(3, 21, 16, generator=torch.Generator().manual_seed(1))
    mel = mel if batched else mel[0]
    with torch.inference_mode():
        with codec.fast_paths(False):
            plain = vocoder(mel)
        with fast_forms(vocoder) as count:
            fast = vocoder(mel)
    assert count == 1 and fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    assert not torch.equal(plain, torch.zeros_like(plain))


def test_the_form_steps_aside_for_half_precision_and_hooked_layers():
    from accelerate.hooks import ModelHook, add_hook_to_module, remove_hook_from_module

    assert hifigan_refusal(_vocoder()) is None
    assert "not float32" in hifigan_refusal(_vocoder().to(torch.bfloat16))
    vocoder = _vocoder()
    add_hook_to_module(vocoder.resblocks[1].convs1[0], ModelHook())
    try:
        assert "resblocks.1.convs1.0 carries a forward of its own" in hifigan_refusal(vocoder)
        with torch.inference_mode(), pytest.warns(match="convs1.0"), fast_forms(vocoder) as count:
            pass
        convs = sum(isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) for m in vocoder.modules())
        assert count == convs - 1  # every other layer takes its own form
    finally:
        remove_hook_from_module(vocoder.resblocks[1].convs1[0])


@pytest.mark.parametrize("bad", [0, -5, 4096, 1.5, True, "1024"])
def test_keep_freed_memory_refuses_a_bad_size(bad):
    with pytest.raises(ValueError, match="trim_mb must be a whole number of MiB"):
        keep_freed_memory(bad)


def test_keep_freed_memory_says_whether_it_took_effect():
    import platform
    import sys

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc



def test_other_cpus_keep_the_per_layer_forms(monkeypatch):
    import codec.fast.hifigan as hifigan

    monkeypatch.setattr(hifigan.platform, "machine", lambda: "arm64")
    vocoder = _vocoder()
    assert "x86-64 CPUs only, this is arm64" in hifigan_refusal(vocoder)
    mel = torch.randn(2, 9, 16, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        with codec.fast_paths(False):
            plain = vocoder(mel)
        with fast_forms(vocoder) as count:
            fast = vocoder(mel)
    assert count == sum(isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) for m in vocoder.modules())
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
