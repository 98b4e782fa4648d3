"""Progress bars for long work (sweeps, patching), in one place.

`bar(total, desc)` is a tqdm bar on stderr that shows only when it is worth it: it stays silent
for the first two seconds (`delay=2`), when stderr is not a terminal (tqdm's `disable=None`) and
when the user asked for quiet (`INTERP_QUIET=1`, which the CLI's `--quiet` sets).

Example:
    >>> from interp.progress import bar
    >>> with bar(3, "heads") as b:
    ...     for _ in range(3):
    ...         b.update(1)
"""

from __future__ import annotations

import os
import sys

QUIET_ENV = "INTERP_QUIET"


def quiet() -> bool:
    """Whether progress bars are silenced (INTERP_QUIET set to anything but 0 or empty)."""
    return os.environ.get(QUIET_ENV, "0") not in ("0", "")


def bar(total: int, desc: str, unit: str = "head"):
    """A tqdm bar of `total` steps (a context manager; call `.update(n)`)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"interp: {desc}", unit=unit, file=sys.stderr, delay=2, leave=False,
                disable=True if quiet() else None)
