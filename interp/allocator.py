"""Keep freed activation memory for reuse: a glibc setting that makes repeated CPU forwards cheaper.

A forward allocates activations of a few to a few hundred MB and frees them at the end. With
glibc's defaults, blocks above the mmap threshold are unmapped when freed and the heap above
the trim threshold is handed back to the kernel, so the next forward faults the same amount of
fresh, zeroed pages back in. For the fast engine (`interp.engine`, `interp.sweep`), whose work
per forward is small, those page faults are a large share of the time: on this project's
2-core benchmark machine, `tune()` took the zoo-4l head sweep from 0.18 s to 0.15 s and
capturing every hook point of a 12-layer GPT-2-small-shaped model from 1.2-1.5x to 1.06-1.09x
a plain forward (`make bench` reports both settings side by side).

`tune()` raises the trim threshold to 1 GiB (freed memory stays in the process, to be reused)
and fixes the mmap threshold at 32 MiB, the ceiling of glibc's own adaptive threshold: blocks
below it come from the heap, larger ones are still mapped and returned at once. The cost is
that the process keeps up to its peak memory instead of returning it to the system.

It changes the whole process. Like PyTorch's CUDA caching allocator, which keeps freed GPU
memory for reuse by default, interp applies it by default: `auto()` runs `tune()` once, the first
time the fast engine (`interp.engine`: capture, sweeps, sampling) runs in a process; the
`interp` command, `make bench` and `python -m experiments` call `tune()` at start. Set the
environment variable `INTERP_TUNE_ALLOCATOR=0` to keep glibc's defaults. Elsewhere than glibc
(macOS, Windows, musl) it does nothing and returns False; an allocator such as jemalloc or
tcmalloc, loaded with LD_PRELOAD, gives the same effect there.

Example:
    >>> import interp
    >>> interp.tune_allocator() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)
TRIM_BYTES = 1 << 30
MMAP_BYTES = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit

ENV = "INTERP_TUNE_ALLOCATOR"
_tuned = False
_asked = False


def glibc():
    """The C library as a ctypes handle if it is glibc, else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  only glibc has it
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def tune(trim_bytes: int = TRIM_BYTES, mmap_bytes: int = MMAP_BYTES) -> bool:
    """Keep freed memory for reuse (see the module docstring); True if glibc took both settings
    (False, and nothing changed, without glibc)."""
    global _tuned
    libc = glibc()
    if libc is None:
        return False
    _tuned = bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_bytes))) and bool(libc.mallopt(M_MMAP_THRESHOLD,
                                                                                          int(mmap_bytes)))
    return _tuned


def tuned() -> bool:
    """True once `tune()` has succeeded in this process."""
    return _tuned


def auto() -> None:
    """`tune()` once per process unless INTERP_TUNE_ALLOCATOR=0 (called by `interp.load` and `interp.engine`)."""
    global _asked
    if not _asked:
        _asked = True
        if os.environ.get(ENV, "1") != "0":
            tune()
