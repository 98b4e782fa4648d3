"""One check for a user-given file or directory path (--model, --out, --data, --pairs, API paths).

File systems refuse a path component longer than 255 bytes and any NUL byte; without a check the
user sees "File name too long" as a traceback from deep inside a loader or writer. `check_path`
turns both into one line that names the argument and the fix, before anything is read or
written. `path_arg` is the same check as an argparse `type=`.

Example:
    >>> from interp.paths import check_path
    >>> check_path("reports/demo", "--out")
    'reports/demo'
    >>> try:
    ...     check_path("x" * 300, "--out")
    ... except Exception as e:
    ...     print(str(e).split("has ")[1])
    a name of 300 bytes; file systems allow at most 255 per path component: shorten it
"""

from __future__ import annotations

import os

from interp.errors import InterpError

MAX_COMPONENT = 255  # bytes, the limit of ext4, XFS, APFS, NTFS


def check_path(path, what: str = "path") -> str:
    """`path` as a string when every component fits a file system, else one `InterpError` line."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str):
        raise InterpError(f"{what} {path!r} is not a path: give a string")
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    if "\x00" in text:
        raise InterpError(f"{what} {shown} contains a NUL byte, which no file name may hold")
    longest = max((len(os.fsencode(part)) for part in text.split(os.sep)), default=0)
    if longest > MAX_COMPONENT:
        raise InterpError(f"{what} {shown} has a name of {longest} bytes; file systems allow at most "
                          f"{MAX_COMPONENT} per path component: shorten it")
    return text


def path_arg():
    """An argparse `type=` that applies `check_path` (its error is the parser's one line, exit 2,
    which names the argument)."""
    import argparse

    def parse(value: str) -> str:
        try:
            return check_path(value, "path")
        except InterpError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse
