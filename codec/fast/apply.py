"""The one place that gives a model's parts their fast forms, for the length of a ``with`` block.

Which part takes which form:

========================================  ==================================================
part (on the CPU)                         fast form
========================================  ==================================================
``nn.LSTM``                               steps through time / rows one at a time (:mod:`.lstm`)
transformers ``SpeechT5HifiGan``          channels-last activations, fused post-ops (:mod:`.hifigan`)
``nn.Conv1d``, ``nn.ConvTranspose1d``     channels-last 2-D convolution (:mod:`.conv_layout`), those
                                          of a vocoder that cannot take its whole-model form
diffusers ``AutoencoderKL``               decoding on channels-last activations (:mod:`.conv_layout`)
diffusers ``Upsample2D`` (x2, 3x3 conv)   sub-pixel convolution (:mod:`.upsample_conv`)
cross-attention ``to_k`` / ``to_v``       output for the block's ``context`` kept (:mod:`.context_cache`)
========================================  ==================================================

A part that cannot take its form, because of its configuration or because it (or a module around
it) carries a forward of its own such as an offloading hook, keeps its plain forward and is named
in a :class:`~codec.fast.forward_override.FastFormSkipped` warning.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from codec.fast.context_cache import remembering_projection
from codec.fast.conv_layout import channels_last_vae_decoding, conv1d_as_channels_last_2d
from codec.fast.forward_override import (
    carries_foreign_forward,
    hooked,
    overridden_forwards,
    runs_override,
    warn_skipped,
)
from codec.fast.hifigan import hifigan_on_channels_last, hifigan_refusal
from codec.fast.lstm import fast_lstm_forward
from codec.fast.switch import fast_paths_enabled
from codec.fast.upsample_conv import subpixel_upsampling

__all__ = ["fast_forms"]

Build = Callable[[], "Callable[..., torch.Tensor] | str"]


def fast_forms(module: nn.Module, *, context: torch.Tensor | None = None) -> AbstractContextManager[int]:
    """Within the block, every part of ``module`` that has a fast form runs it; yields how many do.

    Nothing changes while the fast paths are off in this thread (:func:`codec.fast_paths`) or
    autograd is on (the forms are for inference: several compute from copies of the weights), and
    a form installed here runs the plain forward for a call made under either.
    context: the cross-attention context every call inside the block passes (a UNet's sampling
    run); the keys and values of it are then computed once. It must not change inside the block.
    """
    if not fast_paths_enabled() or torch.is_grad_enabled():
        return nullcontext(0)
    title = type(module).__name__
    carriers = [name for name, part in module.named_modules() if carries_foreign_forward(part)]
    forms: list[tuple[str, nn.Module, Callable]] = []
    skipped: dict[str, str] = {}
    for name, part, build in _candidates(module, context):
        if runs_override(part):
            continue  # a block that still runs gave it its fast form
        holder = _innermost(name, carriers)
        if holder is not None:
            skipped[_join(title, name)] = hooked("it" if holder == name else _join(title, holder))
            continue
        forward = build()
        if isinstance(forward, str):
            skipped[_join(title, name)] = forward
        else:
            forms.append((_join(title, name), part, _switchable(part, forward)))
    warn_skipped(skipped)
    return overridden_forwards(forms)


def _innermost(name: str, around: list[str]) -> str | None:
    """The innermost of the modules named ``around`` that is the module ``name`` or holds it."""
    holders = [h for h in around if h in ("", name) or name.startswith(h + ".")]
    return max(holders, key=len) if holders else None


def _switchable(part: nn.Module, forward: Callable) -> Callable:
    """``forward`` while the fast paths are on in the calling thread and autograd is off, else the class's forward."""
    ordinary = type(part).forward.__get__(part)

    def chosen(*args, **kwargs):
        if fast_paths_enabled() and not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        return ordinary(*args, **kwargs)

    return chosen


def _loaded(module_name: str, class_name: str) -> type | None:
    """A library class if its module is imported (no instance of it can exist otherwise)."""
    module = sys.modules.get(module_name)
    return getattr(module, class_name, None)


def _on_cpu(part: nn.Module) -> bool:
    """Whether the part's weights are on the CPU (or offloaded to "meta", where a hook brings them)."""
    weight = next(part.parameters(), None)
    return weight is not None and weight.device.type in ("cpu", "meta")


def _candidates(root: nn.Module, context: torch.Tensor | None) -> Iterator[tuple[str, nn.Module, Build]]:
    """(name, part, build) for every part of ``root`` with a fast form; ``build()`` gives the form
    or says why the part cannot take it."""
    upsample = _loaded("diffusers.models.upsampling", "Upsample2D")
    autoencoder = _loaded("diffusers.models.autoencoders.autoencoder_kl", "AutoencoderKL")
    attention = _loaded("diffusers.models.attention_processor", "Attention")
    vocoder = _loaded("transformers.models.speecht5.modeling_speecht5", "SpeechT5HifiGan")
    whole: list[str] = []  # parts that run a whole-model form: their own parts take none
    for name, part in root.named_modules():
        if not _on_cpu(part) or any(name.startswith(w + ".") or not w for w in whole):
            continue
        if vocoder and isinstance(part, vocoder) and hifigan_refusal(part) is None:
            whole.append(name)
            yield name, part, functools.partial(hifigan_on_channels_last, part)
        elif isinstance(part, nn.LSTM):
            yield name, part, functools.partial(fast_lstm_forward, part)
        elif isinstance(part, (nn.Conv1d, nn.ConvTranspose1d)):
            yield name, part, functools.partial(conv1d_as_channels_last_2d, part)
        elif upsample and isinstance(part, upsample) and part.use_conv and part.interpolate and not part.use_conv_transpose:
            yield name, part, functools.partial(subpixel_upsampling, part)
        elif autoencoder and isinstance(part, autoencoder):
            first = "post_quant_conv" if part.post_quant_conv is not None else "decoder"
            yield _join(name, first), getattr(part, first), functools.partial(channels_last_vae_decoding, getattr(part, first))
        elif context is not None and attention and isinstance(part, attention) and part.is_cross_attention:
            for projection in ("to_k", "to_v"):
                layer = getattr(part, projection)
                yield _join(name, projection), layer, functools.partial(remembering_projection, layer, context)


def _join(*names: str) -> str:
    return ".".join(filter(None, names))
