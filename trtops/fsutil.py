"""Atomic file writes: a temporary file in the destination's folder, then a rename, so a
reader (or a crash) never sees half a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def _default_file_mode() -> int:
    # mkstemp makes 0600 files; a cache shared by several users (or an emitted loader read
    # by a service account) needs what open() would have made: 0666 minus the umask.
    # Read once at import, while no other thread can be changing the umask.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_file_mode()


def atomic_write(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically.

    Args:
        path: Destination; its folder is created if needed.
        data: The new content.
        fsync: Flush the file to disk before the rename (cache entries: survive a power cut).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file, or a directory's names (what makes a rename durable), to disk; a
    no-op where that is refused (some network filesystems refuse it for directories)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copy ``src`` over ``dest`` atomically (folders created as needed)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def flock_or_close(fd: int, mode: int) -> bool:
    """``flock(fd, mode)``: True when the lock is held; False, with ``fd`` closed, when
    ``mode`` has ``LOCK_NB`` and another holder conflicts. On any other error ``fd`` is
    closed too and the error raised: no caller leaks a descriptor."""
    import fcntl

    try:
        fcntl.flock(fd, mode)
    except BlockingIOError:
        os.close(fd)
        return False
    except BaseException:
        os.close(fd)
        raise
    return True
