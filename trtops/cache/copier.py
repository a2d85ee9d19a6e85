"""Copier processes: where the bytes of large downloads are received, hashed and written,
outside this interpreter.

Why: in one Python process every chunk of a body crosses the GIL to be received, hashed
and written, and a pull's work per entry (metadata reads, staging, publishing) waits
behind those crossings. A copier is a small stdlib-only process
(:mod:`trtops.cache.copier_child`) with its own GIL. On the 16-core lab host a pull of
20 x 50 MB engines took 0.37-0.39 s without copiers and 0.31-0.32 s with them (8 jobs;
benchmarks/RESULTS.md, pull_processes.py). A copier reads a body in 4 MiB
``recv(MSG_WAITALL)`` calls: one call, and one GIL release, per buffer.

What stays here: everything HTTP. The request is signed, sent and answered in this process
(:mod:`trtops.cache.s3_direct`); only once its status and headers are accepted is the
connection's socket handed over (``SCM_RIGHTS``) with the destination file and the body
bytes already buffered. The copier moves exactly the rest of the body into the file and
returns its sha256; the connection is never reused afterwards. A copier that reports a
network error says how many bytes it wrote, so the download resumes from there as any
interrupted one does; one that dies takes its copy with it and copiers stop for this
process.

Where it applies: Linux, plain-TCP connections (a TLS session cannot move between
processes), bodies of at least :data:`MIN_BYTES`, and only while a copier is idle; every
other body is read in this process as before. ``TRTOPS_COPIERS=0`` (or the S3 URL option
``copiers=0``) turns them off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("trtops.cache.copier")

MiB = 1 << 20
MIN_BYTES = 4 * MiB  # smaller bodies: a copier's round trip and fresh connection cost more
BUFFER_BYTES = 4 * MiB  # one recv(MSG_WAITALL), sha256 update and pwrite per buffer
PROGRESS_BYTES = 8 * MiB
# The default most copiers: one per download in flight (``-j``), whatever the core count.
# Fewer than the downloads leaves the last ones in this process: on the 16-core lab host
# 20 bodies in 20 processes took 0.205 s, in 16 (a second wave of 4) 0.235 s
# (benchmarks/RESULTS.md, pull_processes.py). An idle copier holds about 5 MB of its own
# memory (the interpreter's pages are shared), one that copies 4 MiB more.
MOST_COPIERS = 32
# Already-buffered body bytes sent with a job (http.client holds 8 KiB): one message on a
# SOCK_SEQPACKET pair must fit its send buffer (about 208 KiB by default on Linux).
MAX_PREFIX = 64 * 1024
CHILD = Path(__file__).with_name("copier_child.py")


def supported() -> bool:
    """Whether copier processes can run here: Linux with descriptor passing, a Python
    executable to start (not an embedded or frozen interpreter), not turned off."""
    from trtops.names import switch

    if switch(os.environ.get("TRTOPS_COPIERS", "").strip()) is False:
        return False
    return (sys.platform.startswith("linux") and hasattr(socket, "send_fds")
            and hasattr(socket, "MSG_WAITALL") and hasattr(socket, "SO_RCVTIMEO")
            and bool(sys.executable) and not getattr(sys, "frozen", False)
            and CHILD.is_file())


@dataclass(frozen=True)
class Copied:
    """What a copier did with one body: ``copied`` bytes written from the file offset it
    was given; ``sha256`` when all of them were, else ``error`` (``network``: the
    connection failed, resume from ``copied``; ``local``: a write failed, ``errno`` says
    why; ``lost``: the copier ended, nothing it wrote counts). ``reported``: bytes already
    passed to the progress callback."""

    copied: int
    sha256: str | None = None
    error: str | None = None
    errno: int = 0
    message: str = ""
    reported: int = 0

    def exception(self) -> OSError:
        """The error as the in-process reader would have raised it."""
        if self.error == "local":
            return OSError(self.errno, self.message or os.strerror(self.errno))
        if "Timeout" in self.message:
            return TimeoutError(self.message)
        return ConnectionError(self.message or f"copier: {self.error}")


class _Child:
    def __init__(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(CHILD), str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.control = parent
        # Left mid-job (the caller's progress callback raised, e.g. a speculative download
        # that was dropped): its next reply would answer a job it was not given.
        self.abandoned = False

    def copy(self, sock: socket.socket, prefix: bytes, fd: int, offset: int, length: int, *,
             read_timeout: float, writeback: bool,
             progress: Callable[[int], None] | None) -> Copied:
        job = {"offset": offset, "length": length, "timeout": read_timeout,
               "writeback": writeback, "progress_every": PROGRESS_BYTES,
               "buffer": BUFFER_BYTES}
        message = json.dumps(job).encode() + b"\n" + prefix
        reported = 0

        def report(count: int) -> None:
            nonlocal reported
            if progress is not None and count > 0:
                progress(count)
            reported += max(count, 0)

        try:
            socket.send_fds(self.control, [message], [sock.fileno(), fd])
            while True:
                reply = self.control.recv(4096)
                if not reply:
                    return Copied(0, error="lost", message="the copier process ended",
                                  reported=reported)
                fields = json.loads(reply)
                if "progress" in fields:
                    report(int(fields["progress"]))
                    continue
                copied = int(fields["copied"])
                report(copied - reported)  # the bytes written since the last progress
                return Copied(copied, fields.get("sha256"), fields.get("error"),
                              int(fields.get("errno") or 0), str(fields.get("message") or ""),
                              reported=reported)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Copied(0, error="lost", message=f"copier: {type(exc).__name__}",
                          reported=reported)
        except BaseException:
            self.abandoned = True
            raise

    def close(self) -> None:
        """End the process: at once when it was abandoned mid-job (its work is dropped),
        else after its current job (it reads the pair's end)."""
        if self.abandoned:
            self.process.kill()
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)  # wakes a thread waiting for a reply
        self.control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a child stuck in a write
            self.process.kill()
            self.process.wait()


class Copiers:
    """Up to ``size`` copier processes, started on first use and reused; a body goes to
    an idle one or, when none is idle, is read by the calling thread as before.

    Args:
        size: Most copiers at once (a download in flight needs one).
    """

    def __init__(self, size: int) -> None:
        self.size = max(0, int(size))
        self.enabled = self.size > 0 and supported()
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._all: list[_Child] = []
        self.bodies = 0  # bodies handed to a copier (a benchmark's and the tests' measure)
        self._finalizer = weakref.finalize(self, Copiers._close_all, self._all, self._idle)

    def warm(self, count: int) -> threading.Thread | None:
        """Start up to ``count`` copiers in the background (each takes tens of
        milliseconds to start), e.g. while a pull lists the remote. Returns the thread
        that starts them (None when copiers are off)."""
        def start() -> None:
            while True:
                with self._lock:
                    if not self.enabled or len(self._all) >= min(count, self.size):
                        return
                    self._start()

        if not self.enabled:
            return None
        thread = threading.Thread(target=start, name="trtops-copiers", daemon=True)
        thread.start()
        return thread

    def _start(self) -> _Child | None:
        try:
            child = _Child()
        except OSError:
            log.debug("copiers off: a copier process could not start", exc_info=True)
            self.enabled = False
            return None
        self._all.append(child)
        self._idle.append(child)
        return child

    @contextlib.contextmanager
    def taken(self) -> Iterator[_Child | None]:
        """An idle copier for one body (started if fewer than ``size`` run), or None."""
        child = None
        with self._lock:
            if self.enabled:
                if not self._idle and len(self._all) < self.size:
                    self._start()
                if self._idle:
                    child = self._idle.pop()
        try:
            yield child
        finally:
            if child is not None:
                with self._lock:
                    if child.process.poll() is None and self.enabled and not child.abandoned:
                        self._idle.append(child)
                    else:
                        self._retire(child)

    def lost(self, child: _Child) -> None:
        """``child`` ended mid-copy: stop using copiers in this process (whatever killed
        one, e.g. the OOM killer, will kill the next)."""
        with self._lock:
            if self.enabled:
                log.warning("a copier process ended mid-download; downloads continue "
                            "in this process")
            self.enabled = False
            self._retire(child)

    def _retire(self, child: _Child) -> None:
        if child in self._idle:
            self._idle.remove(child)
        if child in self._all:
            self._all.remove(child)
        child.close()

    def close(self) -> None:
        """Stop every copier, also at exit: idle ones end at once, busy ones are killed
        (their bodies are fetched again in this process, if it goes on)."""
        self._finalizer()

    @staticmethod
    def _close_all(children: list[_Child], idle: list[_Child]) -> None:
        for child in list(children):
            if child not in idle:
                child.abandoned = True
            child.close()
        children.clear()
        idle.clear()


@dataclass
class HandedOver:
    """A body after a copier had it: its ``sha256`` when the copier wrote all of it; else
    ``received`` (the bytes kept, hashed into the sink), ``error`` (why it stopped) and
    the ``progress`` callback to go on with."""

    sha256: str | None
    received: int = 0
    error: Exception | None = None
    progress: Callable[[int], None] | None = None


def hand_over(copiers: Copiers | None, body: Any, sink: Any, size: int, *, read_timeout: float,
              progress: Callable[[int], None] | None) -> HandedOver | None:
    """Have a copier receive ``body`` (a direct GET's, not read yet) into the sink's file
    from offset 0; None when none takes it (the caller reads it). The body is closed when
    one did. Raises the sink's CacheError for a failed local write."""
    if copiers is None or not copiers.enabled:
        return None
    handoff = getattr(body, "handoff_ready", None)
    if handoff is None or not handoff(MIN_BYTES):
        return None
    with copiers.taken() as child:
        if child is None:
            return None
        try:
            sock, prefix = body.handoff(MAX_PREFIX)
        except Exception as exc:  # noqa: BLE001 - its read failed: resumed like any other
            body.close()
            return HandedOver(None, 0, exc, progress)
        if sock is None:
            return None
        with copiers._lock:
            copiers.bodies += 1
        try:
            result = child.copy(sock, prefix, sink.fd, 0, size, read_timeout=read_timeout,
                                writeback=sink.writeback, progress=progress)
        finally:
            body.close()
        if result.error == "lost":
            copiers.lost(child)
    if result.sha256 is not None and result.copied == size:
        return HandedOver(result.sha256)
    if result.error == "local":
        from trtops.cache.file_sink import local_error

        raise local_error(result.exception(), sink.relative)
    # What the copier wrote is kept and hashed here; a lost copier's bytes are fetched
    # again, without reporting their progress twice.
    received = sink.adopt(result.copied if result.error == "network" else 0)
    if received < result.reported:
        progress = _skip_first(progress, result.reported - received)
    return HandedOver(None, received, result.exception(), progress)


def _skip_first(progress: Callable[[int], None] | None,
                count: int) -> Callable[[int], None] | None:
    """``progress`` that ignores the first ``count`` bytes reported to it (reported once
    already, before they had to be fetched again)."""
    if progress is None:
        return None
    skipped = 0

    def skipping(amount: int) -> None:
        nonlocal skipped
        hidden = min(amount, count - skipped)
        skipped += hidden
        if amount > hidden:
            progress(amount - hidden)

    return skipping


__all__ = ["Copied", "Copiers", "HandedOver", "MIN_BYTES", "MOST_COPIERS", "hand_over",
           "supported"]
