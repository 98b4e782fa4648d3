"""Atomic writes: everything interp writes appears whole or not at all, and leaves no temporaries.

One writer for every file and directory interp produces (reports, `attention --out` pages,
cache shards and indexes, trained zoo models):

- `atomic_dir(out, force)` builds a directory in a temporary sibling and renames it into place.
  A new `out` is claimed by one `rename`, which fails if another writer got there first, so two
  concurrent writers never silently replace each other. With `force` an existing `out` is
  swapped with the new one in one step (`renameat2(RENAME_EXCHANGE)` on Linux), so a crash at
  any moment leaves either the old or the new directory in place, never neither.
- `atomic_write(path, data)` writes one file through a temporary in the same directory, fsyncs
  it and renames it into place; `data` is bytes, text, or a function that writes the temporary
  path (e.g. safetensors' `save_file`). `atomic_file(path, text)` is the same for a page, and
  refuses to replace a file that interp did not write unless `force=True`.

On any exception, SIGINT, SIGTERM or SIGHUP the temporary is removed before the error
propagates (SIGTERM/SIGHUP become a `KeyboardInterrupt`, which the CLI reports as "interrupted").
A process killed outright (kill -9) cannot clean up; its temporaries carry its process id
(`.NAME.interp-tmp-PID-XXXX`) and the next write beside them removes those whose process is
gone, restoring an old directory that a kill between the two renames of the fallback swap left
aside. A full disk, a read-only or permission-denied destination becomes one `InterpError` line.

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

import errno
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from interp.errors import InterpError
from interp.paths import check_path

TMP = "interp-tmp"  # in the name of every temporary interp writes: .NAME.interp-tmp-PID-XXXX
OLD = "interp-old"  # an old directory moved aside by the fallback swap: .NAME.interp-old-PID-XXXX
GENERATOR = '<meta name="generator" content="interp">'  # in every HTML page interp writes
_STALE = re.compile(rf"^\.(?P<name>.+)\.(?P<kind>{TMP}|{OLD})-(?P<pid>\d+)-")
_WHY = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
        errno.EPERM: "permission denied", errno.EFBIG: "the file is too large for the file system",
        errno.EIO: "an input/output error", errno.ENOTDIR: "a parent of it is a file, not a directory",
        errno.EISDIR: "it is a directory", errno.EEXIST: "a file is in the way of a directory it needs", errno.ENAMETOOLONG: "the name is too long",
        errno.EMLINK: "the directory is full", errno.ENOENT: "a parent directory vanished"}


def unwritable(path: str | Path, e: OSError, fix: str = "choose a writable location with --out") -> InterpError:
    """One line for a write that the file system refused."""
    why = _WHY.get(e.errno) or e.strerror or type(e).__name__
    return InterpError(f"cannot write {str(path)!r}: {why}; {fix}")


@contextmanager
def write_errors(path: str | Path, fix: str = "choose a writable location with --out"):
    """Turn a file-system refusal (disk full, read-only, permission, ...) into one InterpError."""
    try:
        yield
    except OSError as e:
        if e.errno in _WHY:
            raise unwritable(path, e, fix) from None
        raise
    except InterpError:
        raise
    except Exception as e:  # a writer in another language (safetensors' Rust) reports the OS error as text
        code = next((c for c in _WHY if os.strerror(c) in str(e)), None)
        if code is None:
            raise
        raise unwritable(path, OSError(code, os.strerror(code)), fix) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while interp was writing: cleaned up, then stopped like Ctrl-C."""


@contextmanager
def on_signals():
    """Inside the block SIGTERM and SIGHUP raise `Terminated`, so cleanup runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    wanted = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None))
              if s is not None and signal.getsignal(s) is signal.SIG_DFL]  # nohup's ignored SIGHUP stays ignored
    before = {s: signal.signal(s, stop) for s in wanted}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(parent: Path) -> None:
    """Remove temporaries in `parent` left by interp processes that no longer run; put back an
    old directory that a killed fallback swap had moved aside when its target is missing."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = _STALE.match(p.name)
        if not m or _alive(int(m.group("pid"))):
            continue
        target = parent / m.group("name")
        if m.group("kind") == OLD:
            inner = p / m.group("name")
            if not target.exists() and inner.exists():
                try:
                    os.rename(inner, target)
                except OSError:
                    continue  # keep it for the user rather than delete the only copy
        _remove(p)


def _remove(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    except OSError:
        pass


def _prefix(name: str, kind: str = TMP) -> str:
    return f".{name}.{kind}-{os.getpid()}-"


# ------------------------------------------------------------------ directories


def check_target(out: str | Path, force: bool = False) -> Path:
    """The output directory, refusing an existing file or (without force) a non-empty directory."""
    out = Path(check_path(out, "output")).expanduser()
    if out.exists() and not out.is_dir():
        raise InterpError(f"output {str(out)!r} is a file, not a directory; choose a directory path with --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InterpError(f"output directory {str(out)!r} exists and is not empty; pass --force to replace it")
    return out


def check_writable(out: str | Path, fix: str = "choose a writable location with --out") -> None:
    """Refuse, before any long work, a destination whose nearest existing parent cannot be written."""
    out = Path(out).expanduser().absolute()
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InterpError(f"cannot write {str(out)!r}: {str(parent)!r} is a file, not a directory; {fix}")
    with write_errors(out, fix):
        fd, probe = tempfile.mkstemp(prefix=_prefix("write-test"), dir=parent)
        os.close(fd)
        os.unlink(probe)


@contextmanager
def atomic_dir(out: str | Path, force: bool = False, fix: str = "choose a writable location with --out"):
    """Yield a temporary directory; on success it becomes `out`, on any error or signal it is removed.

    Raises:
        InterpError: `out` is a file, non-empty without `force`, written by another process
            meanwhile, or the file system refuses the write (full, read-only, permission).
    """
    out = check_target(out, force)
    with write_errors(out, fix):
        out.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(out.parent)
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(out.name), dir=out.parent))
    try:
        with on_signals(), write_errors(out, fix):
            yield tmp
            os.chmod(tmp, 0o755)
            _commit(tmp, out, force)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _commit(tmp: Path, out: Path, force: bool) -> None:
    """Rename `tmp` to a new (or empty) `out`; with force swap it with a non-empty one."""
    try:
        os.rename(tmp, out)  # atomic; fails when another writer has filled `out` meanwhile
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not out.is_dir():
            raise
    if not force:
        raise InterpError(f"output directory {str(out)!r} was written by another process while this one ran; "
                          "pass --force to replace it")
    if _exchange(tmp, out):
        return  # tmp now holds the old directory; the caller removes it
    old = Path(tempfile.mkdtemp(prefix=_prefix(out.name, OLD), dir=out.parent))
    os.rename(out, old / out.name)  # a kill from here on is undone by the next sweep_stale
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ------------------------------------------------------------------ files


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], None], *, replace: bool = True,
                 fix: str = "choose a writable location with --out") -> Path:
    """Write `path` through a temporary beside it, fsynced, then renamed into place.

    Args:
        path: the file to write.
        data: bytes, text (UTF-8), or a function that writes the temporary path it is given.
        replace: replace an existing `path`; if False an existing one (even one that another
            process created meanwhile) is an error and nothing is changed.
        fix: what the one-line error for a refused write tells the user to do.
    """
    path = Path(path)
    with write_errors(path, fix):
        sweep_stale(path.parent)
        fd, name = tempfile.mkstemp(prefix=_prefix(path.name), dir=path.parent)
    tmp = Path(name)
    try:
        with on_signals(), write_errors(path, fix):
            with os.fdopen(fd, "wb") as f:
                if not callable(data):
                    f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if callable(data):
                data(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            _place(tmp, path, replace)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _place(tmp: Path, path: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if `path` exists: never replaces another writer's file
    except FileExistsError:
        raise InterpError(f"{str(path)!r} already exists (another process wrote it meanwhile?); "
                          "pass --force to replace it") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if path.exists():  # no hard links on this file system: check, then rename
            raise InterpError(f"{str(path)!r} already exists; pass --force to replace it") from None
        os.replace(tmp, path)


def written_by_interp(path: Path) -> bool:
    """Whether an existing page holds interp's generator mark (in its first 4 KiB)."""
    try:
        with open(path, "rb") as f:
            return GENERATOR.encode() in f.read(4096)
    except OSError:
        return False


def check_page_target(path: str | Path, force: bool = False) -> Path:
    """The page to write, refusing a directory or (without force) a file interp did not write."""
    path = Path(check_path(path, "output")).expanduser()
    if path.is_dir():
        raise InterpError(f"output {str(path)!r} is a directory; give a file name such as attention.html")
    if path.exists() and not force and not written_by_interp(path):
        raise InterpError(f"{str(path)!r} exists and was not written by interp; pass --force (force=True) to "
                          "replace it or choose another --out")
    check_writable(path)
    return path


def atomic_file(path: str | Path, text: str, force: bool = False) -> Path:
    """Write a page to `path` atomically; an existing file is replaced only when interp wrote it
    (its generator mark) or with `force`.

    Raises:
        InterpError: `path` is a directory, a file interp did not write (without force), or
            the file system refuses the write.
    """
    path = check_page_target(path, force)
    exists = path.exists()
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, text, replace=exists)
