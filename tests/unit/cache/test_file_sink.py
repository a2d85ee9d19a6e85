"""Receiving bodies: the direct socket read under botocore's body (real http.client,
urllib3 and botocore objects over a socket pair), its fallback, and the hashing sink."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket

import pytest

from trtops.cache import file_sink
from trtops.cache.file_sink import BodyReader, FileSink, read_buffer


def _botocore_body(payload: bytes, *, declared: int | None = None):
    """A botocore StreamingBody over urllib3 over http.client, reading a real socket that
    carries one HTTP response (what boto3's get_object returns)."""
    from botocore.response import StreamingBody
    from urllib3.response import HTTPResponse

    server, client = socket.socketpair()
    length = len(payload) if declared is None else declared
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length + payload)
    server.close()  # a short body ends early, as a dropped connection does
    inner = http.client.HTTPResponse(client)
    inner.begin()
    outer = HTTPResponse(body=inner, headers=dict(inner.getheaders()), status=inner.status,
                         preload_content=False, decode_content=False, original_response=inner)
    return StreamingBody(outer, length), client


def _read_all(reader: BodyReader, size: int = 4096) -> bytes:
    out = bytearray()
    view = memoryview(bytearray(size))
    while True:
        count = reader.readinto(view)
        if not count:
            return bytes(out)
        out += view[:count]


def test_botocore_bodies_are_read_from_the_socket_directly():
    payload = os.urandom(100_000)
    body, sock = _botocore_body(payload)
    try:
        reader = BodyReader(body)
        assert reader.direct
        assert _read_all(reader) == payload
        reader.close()  # fully read: the connection would go back to the pool
        assert body._raw_stream.closed
    finally:
        sock.close()


def test_a_short_body_ends_early_and_the_caller_sees_it():
    body, sock = _botocore_body(b"x" * 1000, declared=5000)
    try:
        reader = BodyReader(body)
        assert len(_read_all(reader)) == 1000  # s3_transport: short read -> resume
        reader.close()
    finally:
        sock.close()


def test_other_bodies_are_read_through_read():
    from botocore.response import StreamingBody

    payload = os.urandom(10_000)
    body = StreamingBody(io.BytesIO(payload), len(payload))
    reader = BodyReader(body)
    assert not reader.direct
    assert _read_all(reader, 3000) == payload
    reader.close()


def test_the_read_buffer_is_reused_per_thread():
    first = read_buffer()
    assert read_buffer() is first and len(first) == file_sink.READ_SIZE
    assert len(read_buffer(4096)) == 4096


@pytest.mark.parametrize("writeback", [False, True])
def test_the_sink_hashes_and_writes_at_offsets(tmp_path, monkeypatch, writeback):
    monkeypatch.setattr(file_sink, "WRITEBACK_BYTES", 1000)
    payload = os.urandom(10_000)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        sink = FileSink(fd, "out", writeback=writeback)
        view = memoryview(payload)
        for start in range(0, len(payload), 3000):
            sink.write(view[start:start + 3000])
    finally:
        os.close(fd)
    assert sink.finish() == hashlib.sha256(payload).hexdigest()
    assert path.read_bytes() == payload
