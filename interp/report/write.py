"""Atomic writes: a report appears whole or not at all.

A report directory is built in a temporary sibling (`.DIR.tmp-XXXX`, same filesystem) and renamed
into place, so an interrupted run leaves the old DIR (or nothing), never half a report. A
non-empty DIR is replaced only with `force=True`; a single page is written to a temporary file and
`os.replace`d.

Example:
    >>> import tempfile, pathlib
    >>> from interp.report.write import atomic_dir
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "index.html").write_text("<p>hi</p>")
    >>> sorted(p.name for p in out.iterdir())
    ['index.html']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from interp.errors import InterpError
from interp.paths import check_path


def _unwritable(path: Path, e: OSError) -> InterpError:
    why = e.strerror or type(e).__name__
    return InterpError(f"cannot write {str(path)!r}: {why}; choose a writable location with --out")


def check_target(out: str | Path, force: bool = False) -> Path:
    """The output directory, refusing an existing file or (without force) a non-empty directory."""
    out = Path(check_path(out, "output")).expanduser()
    if out.exists() and not out.is_dir():
        raise InterpError(f"output {str(out)!r} is a file, not a directory; choose a directory path with --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InterpError(f"output directory {str(out)!r} exists and is not empty; pass --force to replace it")
    return out


@contextmanager
def atomic_dir(out: str | Path, force: bool = False):
    """Yield a temporary directory; on success it replaces `out`, on any error it is removed."""
    out = check_target(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise _unwritable(out, e) from None
    try:
        yield tmp
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(tmp: Path, out: Path) -> None:
    """Move `tmp` to `out`; an existing `out` is moved aside first and deleted after."""
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)
        os.rename(tmp, out)
        os.chmod(out, 0o755)
    except OSError as e:
        if old is not None and not out.exists():
            os.rename(old / out.name, out)  # put the previous report back
        raise _unwritable(out, e) from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def atomic_file(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InterpError(f"output {str(path)!r} is a directory; give a file name such as attention.html")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        if "tmp" in locals() and os.path.exists(tmp):
            os.unlink(tmp)
        raise _unwritable(path, e) from None
    return path
