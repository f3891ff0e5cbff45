"""Keep freed memory in the process on Linux (glibc), so that the decoder's large activations reuse pages.

glibc's ``malloc`` serves a block above its mmap threshold (128 KiB, raised to at most 32 MiB as
blocks are freed) with a fresh mapping and unmaps it on ``free``; it also returns the top of the
heap to the system once more than its trim threshold is free there. The VAE decoder and the
vocoder allocate and free activations of 20-130 MB for every layer, so every layer then
page-faults its output in again, and the kernel zeroes each page. On the 2-core CPU of
``benchmarks/RESULTS.md`` a 3-tap vocoder convolution over 8 x 32 x 20480 values took 19 ms
with the default allocator and 9.7 ms without the faults; the tiny codec's 4-step distilled
decode of 9 windows 0.62 -> 0.54 s, the full-size 4-step decode of a 10.24 s clip ~5 % less.

:func:`keep_freed_memory` serves every block from the heap and keeps up to ``trim_mb`` of
freed memory at its top (the resident size stays near the peak of the work instead of falling
back between layers). It changes the whole process, so the library never calls it by itself:
the ``semantilm`` commands that decode do at start, and a program of yours may. Where a process
only encodes it is left out: a full-size encode of one clip took 7.5-9.6 s with it and 6.6-8.7 s
without (alternating runs), no gain.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters of glibc's malloc.h
_M_MMAP_MAX = -4


def keep_freed_memory(trim_mb: int = 1024) -> bool:
    """Make glibc's malloc serve large blocks from the heap and keep up to ``trim_mb`` MiB of freed
    memory; returns whether it took effect (False on other systems or C libraries: nothing changes)."""
    if not isinstance(trim_mb, int) or isinstance(trim_mb, bool) or not 0 < trim_mb < 2048:
        raise ValueError(f"trim_mb must be a whole number of MiB in (0, 2048), got {trim_mb!r}.")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_mb << 20))
