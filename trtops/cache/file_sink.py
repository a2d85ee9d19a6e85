"""Receiving a downloaded body into a local file: hashed while it is written (on a helper
thread for large bodies on machines with CPUs to spare), written with ``pwrite`` at its
offset (ranged parts in parallel), writeback started early for files to be fsynced, and
local write failures (a full disk) turned into :class:`~trtops.errors.CacheError`."""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from trtops.cache.dir_transport import write_error
from trtops.errors import CacheError

MiB = 1 << 20
SINK_QUEUE_CHUNKS = 8  # chunks received ahead of the hashing/writing thread, per body
WRITEBACK_BYTES = 8 * MiB  # a file to be fsynced gets its writeback started this often


def local_error(exc: OSError, relative: str) -> CacheError:
    return write_error(exc, f"the download of {relative}")


def write_local(write: Callable[..., Any], *args: Any, relative: str = "") -> Any:
    """Call a local write (file write, pwrite, flush, fsync) of a download. Its OSError (a
    full disk, a file size limit) is not a network error: it becomes a CacheError at once,
    never a retry and never 'cannot reach the remote cache'."""
    try:
        return write(*args)
    except OSError as exc:
        raise local_error(exc, relative) from exc


def pwrite_all(fd: int, data: Any, offset: int, relative: str) -> None:
    """Write all of ``data`` at ``offset`` (a pwrite may write less, e.g. at a file size
    limit, where the next one raises)."""
    view = memoryview(data)
    try:
        while view:
            written = write_local(os.pwrite, fd, view, offset, relative=relative)
            if written <= 0:  # pragma: no cover - a regular file does not do this
                raise local_error(OSError(errno.EIO, "short write"), relative)
            view = view[written:]
            offset += written
    finally:
        view.release()


def lap(timings: dict[str, float] | None, name: str, since: float) -> float:
    """Add the seconds since ``since`` to ``timings[name]``; returns now."""
    now = time.perf_counter()
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + now - since
    return now


def file_mode() -> int:
    from trtops.fsutil import FILE_MODE

    return FILE_MODE


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a container's CPU set, not the host's
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait
_writeback_lock = threading.Lock()
_writeback_fn: list[Any] = []  # [function or None], resolved once


def _sync_file_range() -> Any:
    with _writeback_lock:
        if not _writeback_fn:
            function = None
            if sys.platform.startswith("linux"):
                try:
                    import ctypes

                    libc = ctypes.CDLL(None, use_errno=True)
                    function = libc.sync_file_range  # ctypes drops the GIL around the call
                    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                         ctypes.c_uint]
                    function.restype = ctypes.c_int
                except (OSError, AttributeError, ImportError):
                    function = None
            _writeback_fn.append(function)
        return _writeback_fn[0]


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a just-written range of a file to disk, without
    waiting for it (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; a no-op elsewhere).

    Durability still comes from the ``fsync`` that follows the download; this only moves
    the disk writes from that fsync to the time the bytes arrive, so disk and network work
    at once and the fsync waits for the last few MiB instead of the whole file. Failures
    are ignored here: a write error is reported by that fsync.

    Args:
        fd: An open file descriptor.
        offset: First byte of the range.
        length: Bytes in the range.
    """
    function = _sync_file_range()
    if function is not None and length > 0:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class Abandoned(Exception):
    """A part download given up because another part of the same file failed."""


def in_order(current: Any, others: Iterable[Any]) -> Any:
    """The result of future ``current``; raises at once when one of ``others`` fails first
    (no waiting for ``current`` through its retries when the download is lost anyway)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    while not current.done():
        running = []
        for future in others:
            if not future.done():
                running.append(future)
            elif not future.cancelled() and future.exception() is not None:
                raise future.exception()
        wait([current, *running], return_when=FIRST_COMPLETED)
    return current.result()


class FileSink:
    """Where a streamed body goes: sha256, positional writes to the file, and writeback
    started every :data:`WRITEBACK_BYTES` (when the file will be fsynced).

    With ``threaded``, hashing and writing run on a helper thread fed through a short
    queue: the receiving thread goes straight back to the socket, so receiving, hashing
    and writing of one body overlap (hashing 1 MiB costs about as much as receiving it).
    Both sides spend their time outside the GIL (socket reads, sha256, pwrite).
    """

    def __init__(self, fd: int, relative: str, *, writeback: bool, threaded: bool) -> None:
        self.fd = fd
        self.relative = relative
        self.writeback = writeback
        self.digest = hashlib.sha256()
        self.offset = 0
        self._unflushed_from = 0
        self._error: BaseException | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=SINK_QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._run, name="trtops-s3-sink", daemon=True)
            self._thread.start()

    def _consume(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        pwrite_all(self.fd, chunk, self.offset, self.relative)
        self.offset += len(chunk)
        if self.writeback and self.offset - self._unflushed_from >= WRITEBACK_BYTES:
            start_writeback(self.fd, self._unflushed_from, self.offset - self._unflushed_from)
            self._unflushed_from = self.offset

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:  # after a failure: drain, so no writer ever blocks
                try:
                    self._consume(chunk)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                    self._error = exc

    def write(self, chunk: bytes) -> None:
        """Hash and write the next chunk (raises a failure of an earlier one)."""
        if self._queue is None:
            self._consume(chunk)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def _stop(self) -> None:
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def finish(self) -> str:
        """Wait until every chunk is written; returns the sha256 of all of them."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self.digest.hexdigest()

    def close(self) -> None:
        """Stop the helper thread (idempotent; on failure paths)."""
        self._stop()


