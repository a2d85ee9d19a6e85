"""Pins: "this process is using that file of the local cache", so gc leaves it alone.

A prepared model (``prepared/<digest>/``) is read by an apply for as long as the build and
the accuracy check take, long after the publish lock that keeps entries from gc was
released. While it uses one, apply holds a shared ``flock`` on ``locks/pin-<name>``
(:func:`pinned`; any number of applies share it); gc deletes only under an exclusive one
taken without waiting (:func:`unpinned`), so a model in use is kept and a model being
deleted is made again by the apply that pins it next (pin first, then look).

The pin file is removed with what it protects; a pin taken on a file that was removed
meanwhile is taken again on the new one (the inode is checked after locking). Local caches
only (``flock``, as the pull journal uses); remote caches hold no prepared models.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from trtops.cache.layout import LOCKS_DIR, lock_file_name
from trtops.fsutil import flock_or_close


def pin_path(cache_root: str | os.PathLike[str], name: str) -> Path:
    """``<cache>/locks/pin-<name>`` (a safe file name for any ``name``)."""
    return Path(cache_root) / LOCKS_DIR / lock_file_name(f"pin-{name}")


def _lock(path: Path, mode: int) -> int | None:
    """A descriptor holding ``flock(mode)`` on the file now at ``path`` (made if missing),
    or None when ``mode`` does not wait and another holder conflicts."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # read-write: NFS wants writers
        if not flock_or_close(fd, mode):
            return None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # removed by gc while we waited: pin the file that is there now


@contextlib.contextmanager
def pinned(cache_root: str | os.PathLike[str], names: Iterable[str]) -> Iterator[None]:
    """Hold shared pins on ``names`` for the ``with`` block (gc keeps what they protect)."""
    import fcntl

    fds: list[int] = []
    try:
        for name in dict.fromkeys(names):
            fd = _lock(pin_path(cache_root, name), fcntl.LOCK_SH)
            assert fd is not None  # a blocking lock always comes back with one
            fds.append(fd)
        yield
    finally:
        for fd in fds:
            os.close(fd)


@contextlib.contextmanager
def unpinned(cache_root: str | os.PathLike[str], name: str) -> Iterator[bool]:
    """Yield True while holding ``name``'s pin exclusively (nobody uses it: delete what it
    protects, then :func:`drop_pin`), or False at once when someone holds it."""
    import fcntl

    fd = _lock(pin_path(cache_root, name), fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def drop_pin(cache_root: str | os.PathLike[str], name: str) -> None:
    """Remove ``name``'s pin file (call inside :func:`unpinned`, after the deletion)."""
    with contextlib.suppress(FileNotFoundError):
        pin_path(cache_root, name).unlink()


def in_use(cache_root: str | os.PathLike[str], name: str) -> bool:
    """Whether someone holds ``name``'s pin now (read-only: for ``gc --dry-run``, which may
    run on a cache it cannot write)."""
    import fcntl

    try:
        fd = os.open(pin_path(cache_root, name), os.O_RDONLY)
    except OSError:
        return False  # never pinned (or gone)
    if not flock_or_close(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
        return True
    os.close(fd)
    return False
