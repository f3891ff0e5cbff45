"""The codec's fast paths: faster forms of some of its layers on the CPU, behind one switch.

The model files call the plain modules (``nn.LSTM``, diffusers' ``Upsample2D`` and attention,
``Conv1d``); at a few entry points they wrap the call in ``with fast_forms(module):``, and
:mod:`codec.fast.apply` gives the parts of that module their fast forms for the block. Each form
computes what the plain module computes, up to float rounding. ``with codec.fast_paths(False):``
runs the plain modules (per thread; :mod:`codec.fast.switch`), for instance to bisect a parity
drift after a torch or diffusers upgrade. Constants tuned to a CPU live in the form's module here.
:func:`keep_freed_memory` (:mod:`codec.fast.allocator`) is the one process-wide setting: the
``semantilm`` commands that decode make it at start, a program of its own may.
"""

from codec.fast.allocator import keep_freed_memory
from codec.fast.apply import fast_forms
from codec.fast.forward_override import FastFormSkipped, overridden_forwards
from codec.fast.onednn_linear import onednn_linear_available, pack_weight, packed_linear
from codec.fast.switch import fast_paths, fast_paths_enabled

__all__ = ["FastFormSkipped", "fast_forms", "fast_paths", "fast_paths_enabled", "keep_freed_memory",
           "onednn_linear_available", "overridden_forwards", "pack_weight", "packed_linear"]
