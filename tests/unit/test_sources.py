"""trtops.sources: url sources downloaded from a real HTTP server on 127.0.0.1 (http.server in
a thread), checked against their sha256 before they are used, never half-written."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from trtops.errors import EnvironmentMissing, ExitCode, InputError
from trtops.sources import (
    address_problem,
    ensure_source,
    scheme_problem,
    url_source_path,
)

PAYLOAD = b"\x08\x07" + bytes(range(256)) * 400  # ~100 KB; the content is never parsed here
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Source:
    """What ensure_source reads from a manifest's UrlSource or a spec's ModelSource."""

    url: str
    sha256: str = DIGEST
    allow_http: bool = True
    max_size: int | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []
    release = threading.Event()

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        route = self.routes.get(self.path, ("status", 404))
        kind = route[0]
        if kind == "body":
            self.send_response(200)
            self.send_header("Content-Length", str(len(route[1])))
            self.end_headers()
            self.wfile.write(route[1])
        elif kind == "unsized":  # no Content-Length: the body ends when the connection does
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(route[1])
            self.close_connection = True
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", route[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "truncated":  # promises more than it sends, then closes
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "stall":  # headers, then nothing until the test ends
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.flush()
            self.release.wait(30)
        else:
            self.send_response(route[1])
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("TRTOPS_ALLOW_LOOPBACK_SOURCES", "1")
    handler = type("Handler", (_Handler,), {"routes": {}, "hits": [], "release": threading.Event()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    handler.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield handler
    handler.release.set()
    httpd.shutdown()
    httpd.server_close()


def _leftovers(cache: Path) -> list[str]:
    folder = cache / "sources"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_downloads_once_then_uses_the_verified_file(server, tmp_path):
    server.routes["/m.onnx"] = ("body", PAYLOAD)
    seen = []
    path = ensure_source(Source(server.base + "/m.onnx"), tmp_path, progress=lambda got, total: seen.append((got, total)))
    assert path == url_source_path(tmp_path, DIGEST) and path.read_bytes() == PAYLOAD
    assert seen and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert _leftovers(tmp_path) == [f"{DIGEST}.onnx"]
    assert ensure_source(Source(server.base + "/m.onnx"), tmp_path) == path
    assert server.hits == ["/m.onnx"]  # present and verified: no second request


def test_wrong_sha256_keeps_nothing_and_is_a_user_error(server, tmp_path):
    server.routes["/m.onnx"] = ("body", PAYLOAD)
    wrong = "0" * 64
    with pytest.raises(InputError) as info:
        ensure_source(Source(server.base + "/m.onnx", sha256=wrong), tmp_path)
    assert info.value.exit_code == ExitCode.USER_ERROR
    assert DIGEST in info.value.message and wrong in info.value.message and "nothing was kept" in info.value.message
    assert _leftovers(tmp_path) == []


def test_a_wrong_file_in_the_cache_is_replaced_not_used(server, tmp_path):
    server.routes["/m.onnx"] = ("body", PAYLOAD)
    planted = url_source_path(tmp_path, DIGEST)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"not the declared model")
    path = ensure_source(Source(server.base + "/m.onnx"), tmp_path)
    assert path.read_bytes() == PAYLOAD and server.hits == ["/m.onnx"]


def test_a_wrong_file_in_the_cache_while_offline_is_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTOPS_ALLOW_LOOPBACK_SOURCES", "1")
    planted = url_source_path(tmp_path, DIGEST)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"not the declared model")
    with pytest.raises(EnvironmentMissing):
        ensure_source(Source(f"http://127.0.0.1:{_closed_port()}/m.onnx"), tmp_path)
    assert _leftovers(tmp_path) == []


def test_size_cap_from_content_length_and_while_streaming(server, tmp_path):
    server.routes["/sized.onnx"] = ("body", PAYLOAD)
    server.routes["/unsized.onnx"] = ("unsized", PAYLOAD)
    for route in ("/sized.onnx", "/unsized.onnx"):
        with pytest.raises(InputError, match="over the source's max_size"):
            ensure_source(Source(server.base + route, max_size=len(PAYLOAD) - 1), tmp_path)
        assert _leftovers(tmp_path) == []
    # an unsized body within the cap is fine
    assert ensure_source(Source(server.base + "/unsized.onnx"), tmp_path).read_bytes() == PAYLOAD


def test_redirects_within_the_rules_are_followed(server, tmp_path):
    server.routes["/old.onnx"] = ("redirect", "/m.onnx")
    server.routes["/m.onnx"] = ("body", PAYLOAD)
    assert ensure_source(Source(server.base + "/old.onnx"), tmp_path).read_bytes() == PAYLOAD
    assert server.hits == ["/old.onnx", "/m.onnx"]


@pytest.mark.parametrize("location", [
    "file:///etc/passwd",
    "ftp://127.0.0.1/m.onnx",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
])
def test_redirects_to_other_schemes_or_metadata_addresses_are_refused(server, tmp_path, location):
    server.routes["/m.onnx"] = ("redirect", location)
    with pytest.raises(InputError, match="refused|only https|not allowed"):
        ensure_source(Source(server.base + "/m.onnx"), tmp_path)
    assert _leftovers(tmp_path) == []


def test_https_source_redirected_to_http_is_refused(server, tmp_path):
    # allow_http false: a redirect may not downgrade to http (checked before connecting).
    server.routes["/m.onnx"] = ("redirect", server.base + "/x.onnx")
    from trtops.sources import _opener

    opener = _opener(False)
    with pytest.raises(Exception, match="plain http"):
        opener.open(server.base + "/m.onnx", timeout=10)


def test_plain_http_needs_allow_http(tmp_path):
    with pytest.raises(InputError, match="allow_http"):
        ensure_source(Source("http://models.example.com/m.onnx", allow_http=False), tmp_path)
    assert scheme_problem("https://models.example.com/m.onnx", False) is None
    assert "file" in scheme_problem("file:///m.onnx", True)


def test_loopback_is_refused_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv("TRTOPS_ALLOW_LOOPBACK_SOURCES", raising=False)
    with pytest.raises(InputError, match="loopback"):
        ensure_source(Source(f"http://127.0.0.1:{_closed_port()}/m.onnx"), tmp_path)


@pytest.mark.parametrize("address, refused", [
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"), ("::ffff:169.254.169.254", "link-local"), ("0.0.0.0", "not a host"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", None), ("192.168.1.10", None),
    ("93.184.216.34", None), ("2606:2800:220:1::1", None),
])
def test_address_policy(address, refused):
    problem = address_problem(address, allow_loopback=False)
    assert (problem is None) if refused is None else (refused in problem)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_is_an_environment_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTOPS_ALLOW_LOOPBACK_SOURCES", "1")
    with pytest.raises(EnvironmentMissing) as info:
        ensure_source(Source(f"http://127.0.0.1:{_closed_port()}/m.onnx"), tmp_path)
    assert info.value.exit_code == ExitCode.ENVIRONMENT
    assert "cannot download" in info.value.message and "refused" in info.value.message.lower()
    assert _leftovers(tmp_path) == []


def test_dropped_and_stalled_connections_keep_nothing(server, tmp_path, monkeypatch):
    server.routes["/cut.onnx"] = ("truncated",)
    server.routes["/stall.onnx"] = ("stall",)
    with pytest.raises(EnvironmentMissing, match="closed after"):
        ensure_source(Source(server.base + "/cut.onnx"), tmp_path)
    assert _leftovers(tmp_path) == []
    # The server never sends the body: whatever the machine's load, this times out.
    monkeypatch.setenv("TRTOPS_DOWNLOAD_TIMEOUT", "0.5")
    with pytest.raises(EnvironmentMissing, match="cannot download"):
        ensure_source(Source(server.base + "/stall.onnx"), tmp_path)
    assert _leftovers(tmp_path) == []


def test_http_status_codes(server, tmp_path):
    server.routes["/gone.onnx"] = ("status", 404)
    server.routes["/broken.onnx"] = ("status", 503)
    with pytest.raises(InputError, match="HTTP 404"):
        ensure_source(Source(server.base + "/gone.onnx"), tmp_path)
    with pytest.raises(EnvironmentMissing, match="HTTP 503"):
        ensure_source(Source(server.base + "/broken.onnx"), tmp_path)
    assert _leftovers(tmp_path) == []


def test_a_path_source_is_returned_as_is(tmp_path):
    @dataclass
    class PathOnly:
        path: str
        url: str | None = None

    assert ensure_source(PathOnly(str(tmp_path / "m.onnx")), tmp_path) == tmp_path / "m.onnx"
