"""Copier processes (trtops/cache/copier.py) on real sockets, files and child processes: a
body handed over moves into the file with its sha256, and every way it can stop (the
connection closed or silent, a failed write, the copier killed) says how far it got.
Against SeaweedFS, through downloads and pulls: tests/remote/test_remote_copiers.py."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import threading

import pytest

from trtops.cache import copier
from trtops.cache.copier import Copiers

pytestmark = pytest.mark.skipif(not copier.supported(), reason="copiers run on Linux only")

MiB = 1 << 20


class Sender:
    """A TCP peer on 127.0.0.1 that sends ``payload`` once connected, then closes the
    connection (``close``) or keeps it open without sending more until :meth:`stop`."""

    def __init__(self, payload: bytes, *, close: bool = True) -> None:
        self.payload, self.close = payload, close
        self.server = socket.create_server(("127.0.0.1", 0))
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        peer, _ = self.server.accept()
        with peer, contextlib.suppress(ConnectionError):  # the copier may stop first
            peer.sendall(self.payload)
            if not self.close:
                self.done.wait()

    def connect(self) -> socket.socket:
        return socket.create_connection(self.server.getsockname())

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.server.close()


@pytest.fixture()
def copiers():
    pool = Copiers(2)
    yield pool
    pool.close()


def copy(copiers: Copiers, tmp_path, sender: Sender, length: int, *, prefix: bytes = b"",
         read_timeout: float = 30.0, progress=None, writable: bool = True) -> copier.Copied:
    """What a copier does with the body ``sender`` sends, into ``tmp_path / "out"``."""
    (tmp_path / "out").write_bytes(b"")
    fd = os.open(tmp_path / "out", os.O_WRONLY if writable else os.O_RDONLY)
    try:
        with sender.connect() as sock, copiers.taken() as child:
            assert child is not None
            return child.copy(sock, prefix, fd, 0, length, read_timeout=read_timeout,
                              writeback=True, progress=progress)
    finally:
        os.close(fd)
        sender.stop()


def test_a_body_moves_into_the_file_with_its_sha256(tmp_path, copiers):
    payload = os.urandom(9 * MiB + 123)
    prefix, rest = payload[:1000], payload[1000:]  # what http.client had buffered, then the socket
    reported: list[int] = []
    result = copy(copiers, tmp_path, Sender(rest), len(payload), prefix=prefix,
                  progress=reported.append)
    assert result == copier.Copied(len(payload), hashlib.sha256(payload).hexdigest(),
                                   reported=len(payload))
    assert (tmp_path / "out").read_bytes() == payload
    assert sum(reported) == len(payload) and len(reported) > 1  # progress while it ran


def test_a_connection_closed_midway_says_how_much_was_written(tmp_path, copiers):
    payload = os.urandom(5 * MiB)
    result = copy(copiers, tmp_path, Sender(payload), 9 * MiB)
    assert (result.error, result.copied, result.sha256) == ("network", len(payload), None)
    assert isinstance(result.exception(), ConnectionError)
    assert (tmp_path / "out").read_bytes() == payload


def test_a_silent_connection_times_out(tmp_path, copiers):
    payload = os.urandom(1 * MiB)
    result = copy(copiers, tmp_path, Sender(payload, close=False), 4 * MiB, read_timeout=0.2)
    assert result.error == "network" and isinstance(result.exception(), TimeoutError), result
    assert result.copied <= len(payload)
    assert (tmp_path / "out").read_bytes() == payload[:result.copied]


def test_a_failed_write_is_a_local_error_with_its_errno(tmp_path, copiers):
    # A descriptor open for reading only: every write fails with EBADF.
    result = copy(copiers, tmp_path, Sender(os.urandom(5 * MiB)), 5 * MiB, writable=False)
    assert (result.error, result.errno, result.copied) == ("local", errno.EBADF, 0)
    assert result.exception().errno == errno.EBADF


def test_a_killed_copier_is_lost_and_copiers_stop(tmp_path, copiers):
    sender = Sender(b"x" * MiB, close=False)
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with sender.connect() as sock, copiers.taken() as child:
            child.process.kill()
            child.process.wait()
            result = child.copy(sock, b"", fd, 0, 4 * MiB, read_timeout=30,
                                writeback=False, progress=None)
            assert result.error == "lost", result
            copiers.lost(child)
    finally:
        os.close(fd)
        sender.stop()
    assert not copiers.enabled
    with copiers.taken() as child:
        assert child is None  # bodies are read by the caller from now on


def test_busy_copiers_leave_the_body_to_the_caller():
    pool = Copiers(1)
    try:
        with pool.taken() as first, pool.taken() as second:
            assert first is not None and second is None
        with pool.taken() as again:
            assert again is first  # kept and reused
    finally:
        pool.close()


def test_close_ends_every_copier():
    pool = Copiers(2)
    with pool.taken() as first, pool.taken() as second:
        processes = [first.process, second.process]
    pool.close()
    assert [process.poll() is not None for process in processes] == [True, True]


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_copiers_are_turned_off_by_the_environment(monkeypatch, value):
    monkeypatch.setenv("TRTOPS_COPIERS", value)
    assert not copier.supported() and not Copiers(4).enabled


def test_no_copiers_is_no_copiers():
    pool = Copiers(0)
    with pool.taken() as child:
        assert child is None


def test_the_most_copiers_is_a_url_option_and_one_per_download_by_default():
    from trtops.cache.copier import MOST_COPIERS
    from trtops.cache.s3 import open_s3_store
    from trtops.cache.s3_urls import parse_s3_url

    assert parse_s3_url("s3://b/p?copiers=3").options == {"copiers": 3}
    assert open_s3_store("s3://b/p?copiers=3").copiers.size == 3
    assert open_s3_store("s3://b/p").copiers.size == MOST_COPIERS
