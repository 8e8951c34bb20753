"""Handing freed heap memory back to the operating system between group passes.

Each group pass allocates and frees tens of buffers (decoded frames, encoder inputs, activations, the attention
rows) and keeps a few small ones (the group's scores and ranked candidates, cache entries). glibc's allocator
serves buffers up to its dynamic mmap threshold (which rises to the size of the largest buffer freed, up to
32 MiB) from its heaps, and a heap shrinks only from its top: the kept buffers, allocated late, pin the freed
space below them. Measured on the toy model (docs/benchmarks.md, "What grew with the video"): the free memory
glibc held went from 5 to 39 MiB between 1,000 and 10,000 frames while the live allocations grew by 9 MiB.

`malloc_trim(0)` returns every free page of every heap (and thread arena) to the kernel, so resident memory
follows what is live. It takes about a millisecond on the toy model, against a group pass of seconds on a
real one. Elsewhere (macOS, musl, Windows) there is no such call and this is a no-op. The decord backend calls it
too when a reader closes: decoder threads allocate in arenas of their own (docs/benchmarks.md, "Decoders").
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked_up = False


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
            _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):  # no C library by that name, or one without malloc_trim
            _trim = None
    return _trim


def release_free_heap() -> bool:
    """Return the allocator's free pages to the operating system (glibc); True when some were returned, False
    when none were or the C library cannot (then nothing happens)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
