"""The switch of the codec's fast paths (``codec.fast_paths``): both ways give the same tokens and
the same audio up to float rounding; switched off, every module runs its class's forward; a module
that cannot take its fast form (an offloading hook on it or around it) is named in a warning."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import codec
import codec.fast.apply as fast_apply
from codec import SemantiCodec
from codec.fast import FastFormSkipped, fast_forms, fast_paths_enabled
from codec.fast import lstm as fast_lstm
from codec.sampling import DecodeSettings
from codec.vocoder import vocode

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = DecodeSettings(sampler="ddim", steps=3)


@pytest.fixture(scope="module")
def tiny() -> SemantiCodec:
    return SemantiCodec.from_pretrained("tiny")


def _clips() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(32000) / 16000
    return [0.4 * torch.sin(2 * torch.pi * 440 * t), 0.3 * torch.sin(2 * torch.pi * 300 * t[:20000])
            + 0.01 * torch.randn(20000, generator=g)]


@pytest.fixture
def instance_forwards() -> dict[str, list[bool]]:
    """Per module class: whether each call found an instance ``forward`` (a fast form) on the module."""
    seen: dict[str, list[bool]] = {}

    def record(module, args):
        seen.setdefault(type(module).__name__, []).append("forward" in module.__dict__)

    hook = nn.modules.module.register_module_forward_pre_hook(record)
    yield seen
    hook.remove()


def test_the_switch_is_on_by_default_nests_and_comes_back():
    assert fast_paths_enabled()
    with codec.fast_paths(False):
        assert not fast_paths_enabled()
        with codec.fast_paths(True):
            assert fast_paths_enabled()
        assert not fast_paths_enabled()
        with pytest.raises(RuntimeError, match="inside"), codec.fast_paths(True):
            raise RuntimeError("inside")
        assert not fast_paths_enabled()
    assert fast_paths_enabled()

    @codec.fast_paths(False)
    def plain() -> bool:
        return fast_paths_enabled()

    assert plain() is False and fast_paths_enabled()


@pytest.mark.parametrize("value", [0, 1, None, "off"])
def test_the_switch_takes_only_true_or_false(value):
    with pytest.raises(TypeError, match=r"fast_paths\(enabled\) takes True or False, got"):
        with codec.fast_paths(value):
            pass


def test_the_switch_belongs_to_its_thread():
    seen = []
    with codec.fast_paths(False):
        worker = threading.Thread(target=lambda: seen.append(fast_paths_enabled()))
        worker.start()
        worker.join()
    assert seen == [True]


@pytest.mark.parametrize("wide", [False, True], ids=["row-by-row", "time-steps"])
def test_plain_modules_encode_the_same_tokens(tiny, instance_forwards, monkeypatch, wide):
    if wide:  # the tiny codec's LSTM then steps through time, as a full-size one does
        monkeypatch.setattr(fast_lstm, "MIN_HIDDEN_BY_STEPS", tiny.acoustic.lstm.hidden_size)
    clips = _clips()  # two segments: a batch the fast LSTM splits or steps through
    fast = tiny.encode(clips)
    assert instance_forwards.pop("LSTM") == [True]
    with codec.fast_paths(False):
        plain = tiny.encode(clips)
    assert instance_forwards.pop("LSTM") == [False]
    assert not any(any(calls) for calls in instance_forwards.values())
    assert torch.equal(fast.tokens, plain.tokens) and torch.equal(fast.lengths, plain.lengths)


def test_plain_modules_decode_the_same_audio(tiny, instance_forwards, monkeypatch):
    tokens = tiny.encode(_clips())
    instance_forwards.clear()
    fast = tiny.decode(tokens, settings=SETTINGS, generator=torch.Generator().manual_seed(5))
    for kind in ("SpeechT5HifiGan", "Upsample2D"):  # the vocoder (whole-model form), the UNet's and the VAE's
        assert instance_forwards[kind] and all(instance_forwards[kind]), kind
    assert any(instance_forwards["Linear"])  # the cross-attention keys and values
    assert any(instance_forwards["Conv2d"])  # the VAE's first layer, on channels-last activations
    instance_forwards.clear()

    def no_fast_form(*args, **kwargs):
        raise AssertionError("a fast form was built with the fast paths off")

    for builder in ("fast_lstm_forward", "conv1d_as_channels_last_2d", "subpixel_upsampling",
                    "channels_last_vae_decoding", "remembering_projection", "hifigan_on_channels_last"):
        monkeypatch.setattr(fast_apply, builder, no_fast_form)
    with codec.fast_paths(False):
        plain = tiny.decode(tokens, settings=SETTINGS, generator=torch.Generator().manual_seed(5))
    assert instance_forwards and not any(any(calls) for calls in instance_forwards.values())
    assert torch.equal(fast.lengths, plain.lengths)
    # Float noise: the latents differ by ~6e-7 of their peak; through the VAE and vocoder the audio by up to
    # 1.5e-5 of its peak (seeds 5-7 with the decoder's noise order of codec.decode_stream; 0.95e-5 before it).
    assert (fast.audio - plain.audio).abs().max() <= 2e-5 * max(plain.audio.abs().max(), 1e-3)


def test_a_hooked_module_is_named_and_keeps_its_hook(tiny):
    from accelerate.hooks import ModelHook, add_hook_to_module, remove_hook_from_module

    vocoder, config = tiny.decoder.vocoder, tiny.config
    mel = torch.randn(1, 40, config.vae_mel_bins, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode(), codec.fast_paths(False):
        expected = vocode(vocoder, config, mel)
    add_hook_to_module(vocoder.conv_pre, ModelHook())
    hook = vocoder.conv_pre.forward
    try:
        with torch.inference_mode(), pytest.warns(FastFormSkipped, match=r"SpeechT5HifiGan\.conv_pre \(it carries"):
            out = vocode(vocoder, config, mel)
        assert vocoder.conv_pre.forward is hook
    finally:
        remove_hook_from_module(vocoder.conv_pre)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # accelerate leaves the class's forward bound on the module: that is no hook, the form applies
    with torch.inference_mode(), fast_forms(vocoder) as count:
        assert count == 1  # the whole vocoder's form (codec.fast.hifigan), none for its layers
    assert vocoder.conv_pre.forward == type(vocoder.conv_pre).forward.__get__(vocoder.conv_pre)


def test_the_parts_of_a_hooked_model_are_named(tiny):
    from diffusers.hooks import HookRegistry, ModelHook

    vae = tiny.decoder.vae
    registry = HookRegistry.check_if_exists_or_initialize(vae)
    registry.register_hook(ModelHook(), "test-hook")
    try:
        with torch.inference_mode(), pytest.warns(FastFormSkipped) as caught, fast_forms(vae) as count:
            pass
    finally:
        registry.remove_hook("test-hook")
    message = str(caught[0].message)
    assert count == 0
    assert "AutoencoderKL.post_quant_conv (AutoencoderKL carries a forward of its own" in message
    assert "AutoencoderKL.decoder.up_blocks.0.upsamplers.0 (AutoencoderKL carries" in message


def test_a_thread_with_the_fast_paths_off_runs_the_plain_lstm_inside_anothers_block(tiny, monkeypatch):
    lstm = tiny.acoustic.lstm
    batches = []
    plain = nn.LSTM.forward
    monkeypatch.setattr(nn.LSTM, "forward", lambda self, x, hx=None: batches.append(x.shape[0]) or plain(self, x, hx))
    x = torch.randn(2, 5, lstm.input_size)

    def other_thread():
        with torch.no_grad(), codec.fast_paths(False):
            lstm(x)

    with torch.no_grad(), fast_forms(tiny.acoustic) as count:
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        lstm(x)  # this thread: row by row
    assert count == 1 and batches == [2, 1, 1]
