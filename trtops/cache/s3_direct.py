"""Direct GETs: the S3 remote's whole-object reads (meta.json, accuracy.json, engine.plan)
as SigV4-signed requests on per-thread ``http.client`` connections, beside botocore's
request pipeline instead of through it.

Why: botocore spends 1.8-2.1 ms of Python per request (parameter validation, event hooks,
signing, response parsing), all under the GIL. A pull makes three GETs per entry, so with
16 in flight its small reads queued on the client's GIL at that pace. It looked like a
server that serves one small GET at a time, but SeaweedFS answers the same GETs in
0.28 ms each (16 in flight, 16-core lab host) when the client is this module
(benchmarks/RESULTS.md, issue 18).

What stays botocore's, so that nothing about where or as whom a request goes is decided
twice: the URL (bucket endpoint, addressing style, FIPS/dual-stack settings) and the
signing region are those of the listing botocore signed and sent (:meth:`DirectGets.learn`;
direct GETs start only after one, and every pull starts with one); the credentials are
botocore's own object (its chain, its refreshing); the CA bundle is the one botocore
would use. What this module decides: only how one GET is signed and sent.

Any answer other than 200 (206 for a range) or a plain 404, any connection trouble, a
proxy in the environment, a signing scheme other than SigV4: the read is made again
through botocore, whose retries, redirects and error messages the transport already
handles. After an answer that says direct requests are wrong here (a redirect, a 400 or a
403), direct GETs stop for the transport's lifetime, so such a remote costs one extra
request in all.
Direct GETs change what a read costs, never what it returns.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

log = logging.getLogger("trtops.cache.s3")

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_ALGORITHM = "AWS4-HMAC-SHA256"
# Status codes after which direct requests stop: the server wants something that only
# botocore does (a region redirect, another signature, other credentials).
_GIVE_UP = frozenset({301, 302, 307, 400, 403})


class Fallback(Exception):
    """This read must be made through botocore (raised inside, never out of the module's
    public methods)."""


FALLBACK: Any = object()  # what DirectGets.open/read return for "ask botocore"


class DirectBody:
    """The body of a direct GET: ``read``/``readinto`` with the length checked, and
    :meth:`close`, which keeps the connection for the thread's next request only when the
    body was read to its end."""

    def __init__(self, response: http.client.HTTPResponse, length: int,
                 discard: Callable[[], None], sock: Any = None) -> None:
        self.http_response = response
        self.length = length
        self._discard = discard
        self._received = 0
        self._sock = sock  # the connection's socket, for :meth:`handoff`
        self._handed_off = False

    def handoff_ready(self, min_bytes: int) -> bool:
        """Whether the rest of this body can be received by another process
        (:mod:`trtops.cache.copier`): nothing read yet, at least ``min_bytes`` long, sent
        with a Content-Length on a plain TCP socket (a TLS session stays in its process)."""
        import socket

        return (self._received == 0 and not self._handed_off and self.length >= min_bytes
                and not self.http_response.chunked and type(self._sock) is socket.socket)

    def handoff(self, max_prefix: int) -> tuple[Any, bytes]:
        """The socket, positioned at the rest of the body, and the body bytes http.client
        had already read from it; (None, b"") when those are over ``max_prefix``. After a
        handoff this body reads nothing and its connection is never reused."""
        reader = self.http_response.fp
        held = reader.peek(1)  # the reader's buffer (one read from the socket when empty)
        if len(held) > max_prefix:
            return None, b""
        prefix = reader.read(min(len(held), self.length))
        self._handed_off = True
        return self._sock, prefix

    def readinto(self, view: Any) -> int:
        if self._handed_off:
            raise ConnectionError("direct GET body: handed to another process")
        try:
            count = self.http_response.readinto(view)
        except http.client.HTTPException as exc:  # IncompleteRead and kin: a broken body
            raise ConnectionError(f"direct GET body: {type(exc).__name__}") from exc
        self._received += count
        return count

    def read(self, amount: int | None = None) -> bytes:
        """Up to ``amount`` bytes (all when None); raises ConnectionError when the body
        ends before its Content-Length."""
        want = self.length - self._received if amount is None else \
            min(amount, self.length - self._received)
        buffer = bytearray(want)
        view = memoryview(buffer)
        got = 0
        while got < want:
            count = self.readinto(view[got:])
            if not count:
                raise ConnectionError(f"short read: {self._received} of {self.length} bytes")
            got += count
        view.release()
        return bytes(buffer)

    def close(self) -> None:
        response = self.http_response
        if self._handed_off:  # http.client never saw the rest of the body
            self._discard()
            response.close()
            return
        if not response.isclosed() and not response.chunked and \
                self._received >= self.length:
            response.read()  # a 0-byte body: http.client counts it done only once read
        if not response.isclosed():  # not read to its end: the socket is dirty
            self._discard()
        response.close()


class _ReadTimeout:
    """A connection that opens within the connect timeout (and, for https, shakes hands)
    and then waits up to the read timeout for data, also when http.client reopens it after
    a ``Connection: close``."""

    read_timeout = 60.0
    trtops_netloc = ""
    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)


class _HTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


class _Target:
    """Where direct GETs go and how they are signed, as botocore decided it."""

    def __init__(self, scheme: str, netloc: str, host: str, base_path: str, region: str,
                 service: str) -> None:
        self.scheme = scheme
        self.netloc = netloc  # host[:port] to connect to
        self.host = host  # the Host header (no default port)
        self.base_path = base_path  # '/bucket/' or '/' (virtual hosting)
        self.region = region
        self.service = service


def _target_of_listing(url: str, authorization: str) -> _Target | None:
    """Where GETs of the bucket's objects go, from a listing request botocore signed and is
    about to send (``url``, its Authorization header); None when it is not a plain SigV4
    request this module can reproduce."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != _ALGORITHM or not rest.startswith("Credential="):
        return None
    scope = rest[len("Credential="):].split(",", 1)[0].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return None
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.netloc
    if parts.port == default_port:
        host = host.rsplit(":", 1)[0]
    base = parts.path if parts.path.endswith("/") else parts.path + "/"
    return _Target(parts.scheme, parts.netloc, host, base, region=scope[2], service=scope[3])


def _proxied(url: str) -> bool:
    """Whether the environment routes ``url`` through a proxy (botocore would use it)."""
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies.get(parts.scheme):  # botocore reads no ALL_PROXY either
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class DirectGets:
    """Signed whole-object GETs for one bucket, on connections kept per thread.

    Args:
        target: Where requests go (None: learnt from the client's first listing, see
            :meth:`for_client`).
        credentials: botocore's credentials object (``get_frozen_credentials``).
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds without data before a read fails.
        ca_bundle: CA file for https (None: the default trust store).
    """

    def __init__(self, target: _Target | None, credentials: Any, *, connect_timeout: float,
                 read_timeout: float, ca_bundle: str | None = None) -> None:
        self.target = target
        self.credentials = credentials
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ca_bundle = ca_bundle
        self._ssl: ssl.SSLContext | None = None
        if target is not None and target.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=ca_bundle)
        self._local = threading.local()
        self._keys: dict[tuple[str, str], bytes] = {}
        self.enabled = True
        self.listeners: list[Callable[[str, str], None]] = []  # (method, path) per request

    @classmethod
    def for_client(cls, client: Any, credentials: Any, *, connect_timeout: float,
                   read_timeout: float, ca_bundle: str | None) -> DirectGets | None:
        """Direct GETs beside ``client``: they start once it has sent a listing of the
        bucket (every pull starts with one), to the URL and with the signing scope of that
        listing. None without credentials (botocore's own requests report that)."""
        if credentials is None:
            return None
        direct = cls(None, credentials, connect_timeout=connect_timeout,
                     read_timeout=read_timeout, ca_bundle=ca_bundle)
        for operation in ("ListObjectsV2", "ListObjects"):
            client.meta.events.register(f"before-send.s3.{operation}", direct.learn)
        return direct

    def learn(self, request: Any, **_: Any) -> None:
        """botocore's ``before-send`` hook of a listing: take its target (once; a later
        listing elsewhere, e.g. after botocore followed a region redirect, moves it).
        Never raises into botocore's request: anything unexpected turns direct GETs off."""
        try:
            self._learn(request)
        except Exception:  # noqa: BLE001 - e.g. a CA bundle ssl cannot load
            log.debug("direct GETs off: the listing's target could not be taken",
                      exc_info=True)
            self.enabled = False

    def _learn(self, request: Any) -> None:
        authorization = request.headers.get("Authorization") or ""
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1")
        target = _target_of_listing(request.url, authorization)
        if target is None or _proxied(request.url):
            log.debug("direct GETs off: the listing was not plain SigV4, or a proxy applies")
            self.enabled = False
            return
        current = self.target
        if current is None or vars(current) != vars(target):
            if target.scheme == "https" and self._ssl is None:
                self._ssl = ssl.create_default_context(cafile=self._ca_bundle)
            self.target = target

    # ----------------------------------------------------------------- signing

    def _signing_key(self, target: _Target, secret: str, day: str) -> bytes:
        cache_key = (secret, day, target.region, target.service)
        cached = self._keys.get(cache_key)
        if cached is None:
            cached = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (target.region, target.service, "aws4_request"):
                cached = hmac.new(cached, part.encode(), hashlib.sha256).digest()
            self._keys = {cache_key: cached}  # one day, one secret, one region at a time
        return cached

    def headers(self, target: _Target, path: str,
                now: datetime.datetime | None = None) -> dict[str, str]:
        """The signed headers of a GET of ``path`` (already URI-encoded) at ``target``."""
        frozen = self.credentials.get_frozen_credentials()
        now = now or datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        signed = {"host": target.host, "x-amz-content-sha256": EMPTY_SHA256,
                  "x-amz-date": stamp}
        if frozen.token:
            signed["x-amz-security-token"] = frozen.token
        names = ";".join(signed)  # already in sorted order
        canonical = "\n".join((
            "GET", path, "", "".join(f"{name}:{value}\n" for name, value in signed.items()),
            names, EMPTY_SHA256))
        scope = f"{day}/{target.region}/{target.service}/aws4_request"
        to_sign = "\n".join((_ALGORITHM, stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()))
        signature = hmac.new(self._signing_key(target, frozen.secret_key, day),
                             to_sign.encode(), hashlib.sha256).hexdigest()
        headers = {name: value for name, value in signed.items() if name != "host"}
        headers["Authorization"] = (f"{_ALGORITHM} Credential={frozen.access_key}/{scope}, "
                                    f"SignedHeaders={names}, Signature={signature}")
        return headers

    @staticmethod
    def path_of(target: _Target, key: str) -> str:
        """The request path of object ``key`` (encoded as botocore encodes keys)."""
        return target.base_path + quote(key, safe="/~")

    # ----------------------------------------------------------------- connections

    def _connection(self, target: _Target) -> _HTTPConnection | _HTTPSConnection:
        """This thread's connection to ``target`` (opened on first use)."""
        kept = getattr(self._local, "connection", None)
        if kept is not None and kept.trtops_netloc == target.netloc:
            return kept
        self._discard()
        connection: _HTTPConnection | _HTTPSConnection
        if target.scheme == "https":
            connection = _HTTPSConnection(target.netloc, timeout=self.connect_timeout,
                                          context=self._ssl)
        else:
            connection = _HTTPConnection(target.netloc, timeout=self.connect_timeout)
        connection.read_timeout = self.read_timeout
        connection.trtops_netloc = target.netloc
        connection.connect()
        self._local.connection = connection
        return connection

    def _discard(self) -> None:
        """Close this thread's kept connection (its socket is in an unknown state)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _discarder(self, connection: http.client.HTTPConnection) -> Callable[[], None]:
        """What closes ``connection`` (a body's own), and forgets it where it is kept."""
        def discard() -> None:
            if getattr(self._local, "connection", None) is connection:
                self._local.connection = None
            connection.close()
        return discard

    def _send(self, target: _Target, key: str,
              extra: dict[str, str] | None = None) -> http.client.HTTPResponse:
        path = self.path_of(target, key)
        for listener in self.listeners:
            listener("GET", path)
        for _ in range(2):  # a kept connection the server closed meanwhile: once more
            reused = getattr(self._local, "connection", None) is not None
            try:
                connection = self._connection(target)
                headers = self.headers(target, path)
                if extra:
                    headers.update(extra)  # Range, If-Match: sent, not signed (SigV4 allows)
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.trtops_connection = connection  # type: ignore[attr-defined]
                return response
            except (http.client.HTTPException, OSError) as exc:
                self._discard()
                # Once more only for a kept connection the server closed: a timeout means
                # a slow server, and waiting for it twice before botocore does is worse.
                if not reused or isinstance(exc, TimeoutError):
                    raise Fallback(f"{type(exc).__name__}") from exc
        raise Fallback("connection closed twice")  # pragma: no cover - loop returns/raises

    # ----------------------------------------------------------------- reads

    def open(self, key: str, *, byte_range: str | None = None,
             if_match: str | None = None) -> Any:
        """GET object ``key`` (``byte_range``: ``bytes=A-B`` as in a Range header, answered
        206; ``if_match``: the ETag it must still have): (body, response fields like
        botocore's: ContentLength, ETag, Metadata), None when it does not exist, or
        :data:`FALLBACK` (also for a 412: botocore's answer says what changed)."""
        target = self.target
        if not self.enabled or target is None:
            return FALLBACK
        extra = {}
        if byte_range:
            extra["Range"] = byte_range
        if if_match:
            extra["If-Match"] = if_match
        try:
            response = self._send(target, key, extra)
            status = response.status
            if status == (206 if byte_range else 200):
                length = response.getheader("Content-Length")
                if length is None or not length.isdigit():
                    self._discard()
                    raise Fallback("no Content-Length")
                fields: dict[str, Any] = {
                    "ContentLength": int(length),
                    "Metadata": {name[len("x-amz-meta-"):]: value
                                 for name, value in response.getheaders()
                                 if name.lower().startswith("x-amz-meta-")},
                }
                etag = response.getheader("ETag")
                if etag is not None:  # as botocore: absent, not None
                    fields["ETag"] = etag
                connection = response.trtops_connection
                return DirectBody(response, int(length), self._discarder(connection),
                                  sock=connection.sock), fields
            payload = self._small_payload(response)
            if status == 404 and payload is not None and b"NoSuchBucket" not in payload:
                return None
            if status in _GIVE_UP:
                self.enabled = False
                log.debug("direct GETs off: the server answered %d", status)
            raise Fallback(f"status {status}")
        except Fallback as why:
            log.debug("GET %s through botocore: %s", key, why)
            return FALLBACK
        except Exception:  # anything unexpected: botocore decides
            self._discard()
            log.debug("GET %s through botocore after an unexpected error", key, exc_info=True)
            return FALLBACK

    def read(self, key: str, limit: int | None = None) -> Any:
        """The object's bytes (at most ``limit + 1``) and response fields, None when it
        does not exist, or :data:`FALLBACK`."""
        opened = self.open(key)
        if opened is None or opened is FALLBACK:
            return opened
        body, fields = opened
        try:
            return body.read(None if limit is None else limit + 1), fields
        except (ConnectionError, OSError):
            return FALLBACK
        finally:
            body.close()

    def _small_payload(self, response: http.client.HTTPResponse) -> bytes | None:
        """An error answer's body (S3 error XML is small); None when it was not read (no
        Content-Length, too large, broken): its connection is dropped."""
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) <= 64 * 1024:
            try:
                return response.read()
            except (http.client.HTTPException, OSError):
                pass
        self._discard()
        return None


__all__ = ["FALLBACK", "DirectBody", "DirectGets"]
