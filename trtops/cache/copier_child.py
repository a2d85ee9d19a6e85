"""A copier process (:mod:`trtops.cache.copier`): moves response bodies from a socket into
a file and hashes them, one job at a time, for the process that started it.

It runs as a script (``python -I -S copier_child.py FD``) and imports only the standard
library: it starts in tens of milliseconds and never imports trtops, boto3 or anything a
user's environment adds. FD is its end of a ``SOCK_SEQPACKET`` socket pair.

A job is one message: a JSON header, a newline, then the body bytes the parent had already
received (its HTTP reader's buffer), with two file descriptors attached: the connection's
socket, positioned at the rest of the body, and the destination file. Replies, one message
each: ``{"progress": N}`` (bytes written since the last one) every so often, then
``{"copied": N, "sha256": HEX}`` or ``{"copied": N, "error": KIND, "errno": E,
"message": TEXT}`` with KIND ``network`` (connection closed, reset, or silent for the read
timeout), ``local`` (a write to the file failed, e.g. a full disk) or ``job`` (a malformed
job). The child closes both descriptors after every job and ends when the pair's other end
closes.
"""

import hashlib
import json
import os
import signal
import socket
import struct
import sys

MAX_MESSAGE = 1 << 20  # a job's header and already-received bytes fit (see copier.py)


SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


class LocalWriteError(Exception):
    def __init__(self, exc: OSError) -> None:
        super().__init__(exc.strerror or str(exc))
        self.errno = exc.errno or 0


def find_sync_file_range():
    """Linux ``sync_file_range`` through ctypes (which drops the GIL around the call), or
    None (another system, no libc). Shared with trtops.cache.file_sink."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
        function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        function.restype = ctypes.c_int
        return function
    except (OSError, AttributeError, ImportError):
        return None


def pwrite_all(fd, data, offset):
    """Write all of ``data`` at ``offset``: a pwrite may write less (e.g. at a file size
    limit, where the next one raises OSError). Shared with trtops.cache.file_sink."""
    view = memoryview(data)
    try:
        while view:
            written = os.pwrite(fd, view, offset)
            if written <= 0:  # pragma: no cover - a regular file does not do this
                raise OSError(5, "short write")  # EIO
            view = view[written:]
            offset += written
    finally:
        view.release()


class Copier:
    def __init__(self, control):
        self.control = control
        self.view = None
        self.writeback = None

    def buffer(self, size):
        if self.view is None or len(self.view) != size:
            self.view = memoryview(bytearray(size))
        return self.view

    def run(self, job, prefix, sock, fd):
        """Copy ``job["length"]`` bytes (``prefix`` first, then the socket) to ``fd`` at
        ``job["offset"]``; returns the final reply."""
        digest = hashlib.sha256()
        offset = start = job["offset"]
        end = start + job["length"]
        every = max(1, job["progress_every"])
        unreported = 0
        writeback_from = start
        if job["writeback"] and self.writeback is None:
            self.writeback = find_sync_file_range() or False
        try:
            seconds = max(float(job["timeout"]), 0.001)
            sock.settimeout(None)  # blocking: MSG_WAITALL waits for the whole buffer...
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack(
                "ll", int(seconds), int((seconds % 1) * 1_000_000)))  # ...this long per wait
            view = self.buffer(job["buffer"])
            pending = memoryview(prefix)[:end - start]
            while offset < end:
                if pending:
                    chunk, pending = pending, memoryview(b"")
                else:
                    want = min(len(view), end - offset)
                    try:
                        count = sock.recv_into(view, want, socket.MSG_WAITALL)
                    except BlockingIOError:  # SO_RCVTIMEO passed without data
                        raise TimeoutError("no data within the read timeout") from None
                    if count <= 0:
                        raise ConnectionError(f"closed after {offset - start} of "
                                              f"{end - start} bytes")
                    chunk = view[:count]
                digest.update(chunk)
                try:
                    pwrite_all(fd, chunk, offset)
                except OSError as exc:
                    raise LocalWriteError(exc) from None
                offset += len(chunk)
                unreported += len(chunk)
                if job["writeback"] and self.writeback and offset - writeback_from >= every:
                    self.writeback(fd, writeback_from, offset - writeback_from,
                                   SYNC_FILE_RANGE_WRITE)
                    writeback_from = offset
                if unreported >= every:
                    self.control.send(json.dumps({"progress": unreported}).encode())
                    unreported = 0
        except LocalWriteError as exc:
            return {"copied": offset - start, "error": "local", "errno": exc.errno,
                    "message": str(exc)}
        except OSError as exc:  # the connection: reset, closed, timed out
            return {"copied": offset - start, "error": "network", "errno": exc.errno or 0,
                    "message": f"{type(exc).__name__}: {exc}"}
        return {"copied": offset - start, "sha256": digest.hexdigest()}

    def serve(self):
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, 2)
            except OSError:
                return
            if not message:
                for fd in fds:
                    os.close(fd)
                return  # the parent is gone or done
            try:
                if len(fds) != 2:
                    raise ValueError(f"a job needs 2 descriptors, got {len(fds)}")
                header, _, prefix = message.partition(b"\n")
                job = json.loads(header)
                sock = socket.socket(fileno=fds[0])
                try:
                    reply = self.run(job, prefix, sock, fds[1])
                finally:
                    sock.close()
                    os.close(fds[1])
            except Exception as exc:  # noqa: BLE001 - a malformed job: say so, keep serving
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                reply = {"copied": 0, "error": "job", "errno": 0,
                         "message": f"{type(exc).__name__}: {exc}"}
            try:
                self.control.send(json.dumps(reply).encode())
            except OSError:
                return


def main(argv):
    # The terminal's Ctrl-C reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(argv[1]))
    try:
        Copier(control).serve()
    finally:
        control.close()


if __name__ == "__main__":
    main(sys.argv)
