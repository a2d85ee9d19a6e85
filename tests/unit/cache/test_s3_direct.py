"""Direct GETs (trtops.cache.s3_direct) sign as botocore signs, go where botocore's listing
went, and stay off where botocore would do something they do not (a proxy, another
signature). Requests against a real server: tests/remote/test_remote_direct_gets.py."""

from __future__ import annotations

import datetime

import pytest

pytest.importorskip("botocore")

from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from trtops.cache.s3_direct import DirectGets, _proxied, _Target, _target_of_listing  # noqa: E402
from trtops.cache.s3_urls import parse_s3_url  # noqa: E402
from trtops.errors import InputError  # noqa: E402

NOW = datetime.datetime(2026, 12, 6, 13, 0, 0, tzinfo=datetime.timezone.utc)
SIGV4 = "AWS4-HMAC-SHA256 Credential=AKID/20261206/{region}/s3/aws4_request, " \
        "SignedHeaders=host;x-amz-date, Signature=abc"


def botocore_signature(target: _Target, path: str, credentials: Credentials) -> str:
    """The Authorization header botocore's S3 SigV4 signer makes for the same GET."""
    stamp = NOW.strftime("%Y%m%dT%H%M%SZ")
    direct = DirectGets(target, credentials, connect_timeout=1, read_timeout=1)
    headers = direct.headers(target, path, now=NOW)
    request = AWSRequest(method="GET", url=f"{target.scheme}://{target.netloc}{path}",
                         headers={k: v for k, v in headers.items() if k != "Authorization"})
    request.context["timestamp"] = stamp
    auth = S3SigV4Auth(credentials, target.service, target.region)
    canonical = auth.canonical_request(request)
    to_sign = auth.string_to_sign(request, canonical)
    return (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{stamp[:8]}/"
            f"{target.region}/{target.service}/aws4_request, "
            f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))}, "
            f"Signature={auth.signature(to_sign, request)}")


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize("key", ["engines/ab/abcdef/meta.json",
                                 "odd pre+fix/ü~x/a b+c=d&e.json"])
def test_the_signature_is_botocores(key, token):
    target = _Target("http", "127.0.0.1:9000", "127.0.0.1:9000", "/bucket/", "eu-west-1", "s3")
    credentials = Credentials("AKID", "secret/key+", token)
    direct = DirectGets(target, credentials, connect_timeout=1, read_timeout=1)
    path = direct.path_of(target, key)
    assert path.isascii() and " " not in path
    assert direct.headers(target, path, now=NOW)["Authorization"] == \
        botocore_signature(target, path, credentials)
    if token:
        assert direct.headers(target, path, now=NOW)["x-amz-security-token"] == token


def test_the_target_is_the_listings():
    path_style = _target_of_listing(
        "http://127.0.0.1:9000/bucket?list-type=2&prefix=p%2Fengines%2F",
        SIGV4.format(region="us-east-1"))
    assert vars(path_style) == {"scheme": "http", "netloc": "127.0.0.1:9000",
                                "host": "127.0.0.1:9000", "base_path": "/bucket/",
                                "region": "us-east-1", "service": "s3"}
    virtual = _target_of_listing("https://bucket.s3.eu-west-1.amazonaws.com:443/?list-type=2",
                                 SIGV4.format(region="eu-west-1"))
    assert (virtual.host, virtual.base_path, virtual.region) == \
        ("bucket.s3.eu-west-1.amazonaws.com", "/", "eu-west-1")
    behind_a_path = _target_of_listing("https://gw.example.com/s3/bucket?list-type=2",
                                       SIGV4.format(region="r1"))
    assert behind_a_path.base_path == "/s3/bucket/"


@pytest.mark.parametrize("authorization", [
    "AWS AKID:signature",  # SigV2
    "AWS4-ECDSA-P256-SHA256 Credential=AKID/20261206/s3/aws4_request, Signature=x",  # SigV4a
    "",
])
def test_a_listing_not_signed_with_sigv4_turns_direct_gets_off(authorization):
    assert _target_of_listing("http://127.0.0.1:9000/bucket?list-type=2", authorization) is None


def test_a_proxy_in_the_environment_is_honoured(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not _proxied("https://s3.example.com/bucket?list-type=2")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    assert _proxied("https://s3.example.com/bucket?list-type=2")
    monkeypatch.setenv("NO_PROXY", "s3.example.com")
    assert not _proxied("https://s3.example.com/bucket?list-type=2")


@pytest.mark.parametrize(("value", "expected"), [("0", False), ("false", False),
                                                  ("off", False), ("1", True), ("yes", True)])
def test_direct_gets_is_a_url_option(value, expected):
    assert parse_s3_url(f"s3://b/p?direct_gets={value}").options == {"direct_gets": expected}


def test_a_direct_gets_value_that_is_no_flag_is_refused():
    with pytest.raises(InputError, match="direct_gets='maybe' in the S3 URL is not a flag"):
        parse_s3_url("s3://b/p?direct_gets=maybe")


# ------------------------------------------------- answers a real server rarely gives

class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers the n-th request with ``answer(n)``
    (raw bytes; None: never answers). Counts requests and connections."""

    def __init__(self, answer) -> None:
        import socket
        import threading

        self.answer = answer
        self.requests = 0
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.netloc = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client) -> None:
        pending = b""
        with client:
            while True:
                while b"\r\n\r\n" not in pending:
                    data = client.recv(65536)
                    if not data:
                        return
                    pending += data
                pending = pending.split(b"\r\n\r\n", 1)[1]
                self.requests += 1
                answer = self.answer(self.requests)
                if answer is None:
                    self._stop.wait()
                    return
                client.sendall(answer)

    def direct(self, read_timeout: float = 5.0) -> DirectGets:
        target = _Target("http", self.netloc, self.netloc, "/bucket/", "us-east-1", "s3")
        return DirectGets(target, Credentials("AKID", "secret"), connect_timeout=5,
                          read_timeout=read_timeout)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def scripted():
    servers = []

    def start(answer):
        servers.append(ScriptedServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_missing_bucket_with_a_chunked_error_body_is_left_to_botocore(scripted):
    from trtops.cache.s3_direct import FALLBACK

    xml = b"<Error><Code>NoSuchBucket</Code></Error>"
    server = scripted(lambda n: b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"%x\r\n%s\r\n0\r\n\r\n" % (len(xml), xml))
    assert server.direct().open("k") is FALLBACK  # not None: botocore says NoSuchBucket


def test_a_timeout_on_a_kept_connection_goes_to_botocore_without_a_second_wait(scripted):
    from trtops.cache.s3_direct import FALLBACK

    ok = b'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nETag: "e"\r\n\r\nx'
    server = scripted(lambda n: ok if n == 1 else None)  # then a server that never answers
    direct = server.direct(read_timeout=300)  # the first answer may come late on a busy machine
    assert direct.read("a")[0] == b"x"
    direct._local.connection.sock.settimeout(0.2)  # the kept connection: a slow server's
    assert direct.read("b") is FALLBACK
    assert server.requests == 2  # not sent again on a new connection to wait once more


def test_fields_are_botocores_when_the_server_sends_no_etag(scripted):
    server = scripted(lambda n: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert server.direct().read("a") == (b"x", {"ContentLength": 1, "Metadata": {}})


def test_an_empty_object_keeps_the_connection(scripted):
    server = scripted(lambda n: b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: "e"\r\n\r\n')
    direct = server.direct()
    assert direct.read("a")[0] == b"" and direct.read("b")[0] == b""
    assert (server.requests, server.connections) == (2, 1)


# ------------------------------------------------- what the transport takes from botocore

def _without_aws_environment(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy", "NO_PROXY", "no_proxy", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_the_ca_bundle_is_the_one_botocore_verifies_with(monkeypatch, tmp_path):
    from trtops.cache.s3_transport import S3Transport

    _without_aws_environment(monkeypatch)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # botocore honours it
    transport = S3Transport("b", "p", endpoint_url="https://s3.example.com")
    assert transport.direct._ca_bundle == transport.client._endpoint.http_session._verify


class _Listing:
    def __init__(self, url: str) -> None:
        self.url = url
        self.headers = {"Authorization": SIGV4.format(region="us-east-1")}


def test_a_listing_through_a_proxy_turns_direct_gets_off(monkeypatch):
    _without_aws_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")
    direct = DirectGets(None, Credentials("AKID", "secret"), connect_timeout=1,
                        read_timeout=1)
    direct.learn(_Listing("http://s3.example.com/bucket?list-type=2"))
    assert not direct.enabled


def test_a_ca_bundle_ssl_cannot_load_turns_direct_gets_off_and_not_the_listing(tmp_path):
    direct = DirectGets(None, Credentials("AKID", "secret"), connect_timeout=1,
                        read_timeout=1, ca_bundle=str(tmp_path / "missing.pem"))
    direct.learn(_Listing("https://s3.example.com/bucket?list-type=2"))  # does not raise
    assert not direct.enabled


@pytest.mark.parametrize("name", ["sha256", "Sha256", "SHA256"])
def test_the_recorded_sha256_is_found_in_any_case(name):
    from trtops.cache.s3_transport import recorded_sha256

    assert recorded_sha256({"Metadata": {name: "ab" * 32}}) == "ab" * 32
    assert recorded_sha256({"Metadata": {}}) is None and recorded_sha256({}) is None
