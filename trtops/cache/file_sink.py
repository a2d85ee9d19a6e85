"""Receiving a downloaded body into a local file: read straight from the socket into a
reused per-thread buffer (:func:`body_reader`), hashed and written with ``pwrite`` at its
offset by the receiving thread (ranged parts in parallel), writeback started early for
files to be fsynced, and local write failures (a full disk) turned into
:class:`~trtops.errors.CacheError`."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from trtops.cache import copier_child
from trtops.cache.dir_transport import write_error
from trtops.errors import CacheError

MiB = 1 << 20
# Bytes per read of a body. Measured on 2 vCPUs against SeaweedFS (benchmarks/RESULTS.md,
# session 5): 256 KiB to 16 MiB cost the same client CPU per GB within noise; 1 MiB keeps
# what was received in the CPU caches for the hash and the write that follow.
READ_SIZE = 1 * MiB
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
    """Write all of ``data`` at ``offset``; a failure is a CacheError (:func:`write_local`)."""
    write_local(copier_child.pwrite_all, fd, data, offset, relative=relative)


def lap(timings: dict[str, float] | None, name: str, since: float) -> float:
    """Add the seconds since ``since`` to ``timings[name]``; returns now."""
    now = time.perf_counter()
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + now - since
    return now


def file_mode() -> int:
    from trtops.fsutil import FILE_MODE

    return FILE_MODE


_writeback_lock = threading.Lock()
_writeback_fn: list[Any] = []  # [function or None], resolved once


def _sync_file_range() -> Any:
    with _writeback_lock:
        if not _writeback_fn:
            _writeback_fn.append(copier_child.find_sync_file_range())
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
        function(fd, offset, length, copier_child.SYNC_FILE_RANGE_WRITE)


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


_buffers = threading.local()


def read_buffer(size: int = READ_SIZE) -> memoryview:
    """This thread's receive buffer, allocated once and reused for every body (no new
    bytes object, no fresh pages per chunk)."""
    buffer = getattr(_buffers, "view", None)
    if buffer is None or len(buffer) != size:
        buffer = _buffers.view = memoryview(bytearray(size))
    return buffer


class BodyReader:
    """``readinto`` for a botocore response body, and giving its connection back.

    botocore's ``StreamingBody`` wraps a urllib3 response, which wraps the
    ``http.client.HTTPResponse`` that reads the socket. That innermost ``readinto`` fills
    the caller's buffer straight from the socket; each layer above it adds per-chunk Python
    work under the GIL and a new bytes object per read (urllib3's own ``readinto`` is a
    ``read`` plus a copy). botocore turns content decoding off for S3 and its length check
    is repeated by the caller (received == Content-Length, then sha256), so reading the
    innermost response gives the same bytes. A direct GET's body
    (:class:`~trtops.cache.s3_direct.DirectBody`) is read straight too. Any other body
    (another HTTP client, a test double) is read with ``read`` and copied, as before.
    """

    def __init__(self, body: Any) -> None:
        import http.client  # loaded by botocore already

        self.body = body
        direct = getattr(body, "http_response", None)  # s3_direct.DirectBody
        if isinstance(direct, http.client.HTTPResponse):
            # A direct GET's body checks its length and turns a broken body into a
            # ConnectionError itself; its close keeps or drops the connection.
            self._raw, self._inner = None, body
            return
        raw = getattr(body, "_raw_stream", None)
        inner = getattr(raw, "_fp", None)
        self._raw = raw if isinstance(inner, http.client.HTTPResponse) else None
        self._inner = inner if self._raw is not None else None

    @property
    def direct(self) -> bool:
        """Whether reads go straight from the socket into the buffer."""
        return self._inner is not None

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` (up to its length); 0 at the end of the body."""
        if self._inner is not None:
            return self._inner.readinto(view)
        chunk = self.body.read(len(view))
        view[:len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        """Give a fully read connection back to the pool (urllib3 would have, reading
        through its own layers), then close the body; a connection not read to its end is
        closed, never reused."""
        if self._raw is not None and self._inner.isclosed():
            release = getattr(self._raw, "release_conn", None)
            if callable(release):
                release()
        self.body.close()


class FileSink:
    """Where a streamed body goes: sha256, positional writes to the file, and writeback
    started every :data:`WRITEBACK_BYTES` (when the file will be fsynced).

    The receiving thread hashes and writes each chunk itself: sha256, ``pwrite`` and the
    socket reads all run outside the GIL, so parallel downloads spread over the CPUs. A
    helper thread per body (the earlier design) measured no faster on the 16-core lab host
    (1,450 MB/s with it, 1,624 without, issue 18) and slower on 2 vCPUs.
    """

    def __init__(self, fd: int, relative: str, *, writeback: bool) -> None:
        self.fd = fd
        self.relative = relative
        self.writeback = writeback
        self.digest = hashlib.sha256()
        self.offset = 0
        self._unflushed_from = 0

    def write(self, chunk: Any) -> None:
        """Hash and write the next chunk (bytes or a memoryview of the read buffer)."""
        self.digest.update(chunk)
        pwrite_all(self.fd, chunk, self.offset, self.relative)
        self.offset += len(chunk)
        if self.writeback and self.offset - self._unflushed_from >= WRITEBACK_BYTES:
            start_writeback(self.fd, self._unflushed_from, self.offset - self._unflushed_from)
            self._unflushed_from = self.offset

    def adopt(self, length: int) -> int:
        """Take the file's first ``length`` bytes, written by someone else (a copier
        process), as received: hash them from the file. Returns ``length``."""
        buffer = read_buffer()
        while self.offset < length:
            count = write_local(os.preadv, self.fd, [buffer[:length - self.offset]],
                                self.offset, relative=self.relative)
            if count <= 0:
                raise local_error(OSError(errno.EIO, "the file is shorter than written"),
                                  self.relative)
            self.digest.update(buffer[:count])
            self.offset += count
        self._unflushed_from = self.offset
        return length

    def finish(self) -> str:
        """The sha256 of everything written."""
        return self.digest.hexdigest()
