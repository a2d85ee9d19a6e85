"""Model sources given as ``{url, sha256}``: downloaded once into ``<cache>/sources/``.

:func:`ensure_source` is the one entry point (``apply``, ``verify`` and ``trtops prepare``
call it). The file the manifest declares is trusted only by its sha256:

* present in ``<cache>/sources/<sha256>.onnx`` and its content hashes to the declared
  sha256 (through the digest memo): used as is, no request made. A file there whose content
  does not match (put there by hand, or damaged) is removed and downloaded again, so a
  wrong file is never built and published under the declared hash.
* otherwise downloaded with the standard library (no new dependency) into a temporary file
  in the same folder, hashed while it streams, capped at ``max_size``, fsynced, and renamed
  into place only once its sha256 matches. A failure of any kind leaves nothing behind.

What a URL may reach (the manifest author is trusted with a URL, not with this machine's
network position): ``https`` only, ``http`` only where the source says ``allow_http: true``;
redirects follow the same rule (never to another scheme); the address actually connected
to may not be link-local (169.254.0.0/16, fe80::/10, which holds the cloud metadata
services), a known metadata address (fd00:ec2::254, 100.100.100.200), unspecified or
multicast, nor loopback unless ``TRTOPS_ALLOW_LOOPBACK_SOURCES=1`` (a local mirror; the
tests). The host is resolved once, every address it resolves to is checked, and the
connection goes to a checked address, so a DNS answer that changes between a check and the
connection does not get around it. Through an HTTP(S) proxy from the environment the peer
is the proxy, and which hosts it reaches is the proxy's policy.

Exit codes: a refused URL, a 4xx answer, a file over ``max_size`` or a sha256 mismatch is
the manifest's problem (1); no network, a refused connection, a timeout, a dropped
connection or a 5xx answer is the environment's (5).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from trtops.errors import CacheError, EnvironmentMissing, InputError
from trtops.names import switch

log = logging.getLogger("trtops.sources")

SOURCES_DIR = "sources"
DEFAULT_MAX_SIZE = 2 << 30  # 2 GiB: the protobuf limit of a single-file ONNX model
LOOPBACK_VARIABLE = "TRTOPS_ALLOW_LOOPBACK_SOURCES"
TIMEOUT_VARIABLE = "TRTOPS_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # seconds without a byte before a download counts as stalled
MAX_REDIRECTS = 5
_CHUNK = 1 << 20
# Cloud metadata services outside the link-local ranges.
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))


def url_source_path(cache_dir: str | os.PathLike[str], sha256: str) -> Path:
    """Where a url source with this digest lives once downloaded: ``<cache>/sources/<sha>.onnx``."""
    return Path(cache_dir) / SOURCES_DIR / f"{sha256}.onnx"


# --------------------------------------------------------------------------- policy


class SourceRefused(Exception):
    """The URL, a redirect or the address it resolved to is not allowed."""


def _truthy(value: str | None) -> bool:
    return switch((value or "").strip()) is True


def address_problem(address: str, *, allow_loopback: bool | None = None) -> str | None:
    """Why a download may not connect to ``address`` (an IP literal), or ``None``.

    Args:
        address: the peer's IP address.
        allow_loopback: loopback allowed (default: ``TRTOPS_ALLOW_LOOPBACK_SOURCES``).
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if allow_loopback is None:
        allow_loopback = _truthy(os.environ.get(LOOPBACK_VARIABLE))
    if ip in _METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return f"{ip} is link-local (where cloud metadata services live)"
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a host address"
    if ip.is_loopback and not allow_loopback:
        return f"{ip} is this machine (loopback; {LOOPBACK_VARIABLE}=1 allows a local mirror)"
    return None


def scheme_problem(url: str, allow_http: bool) -> str | None:
    """Why ``url`` may not be fetched under the source's ``allow_http``, or ``None``."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and allow_http):
        return None if parts.hostname else f"{url!r} has no host"
    if parts.scheme == "http":
        return f"{url!r} is plain http; use https, or set allow_http: true in the source"
    return f"{url!r}: only https (or http with allow_http: true) is fetched, not {parts.scheme or 'a relative URL'}"


def _guarded_create_connection(address: tuple[str, int], timeout: Any = None,
                               source_address: Any = None) -> Any:
    """``socket.create_connection`` that resolves the host once, refuses it when any of its
    addresses is not allowed, and connects to the vetted address itself (so a second DNS
    answer cannot move the connection elsewhere)."""
    import socket

    host, port = address
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        problem = address_problem(str(sockaddr[0]))
        if problem:
            raise SourceRefused(f"refused to connect to {host} ({sockaddr[0]}): {problem}")
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None and timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"cannot resolve {host}")


def _opener(allow_http: bool) -> Any:
    """A urllib opener whose connections check their peer and whose redirects keep to
    ``scheme_problem`` (built on first use: ``http.client`` and ``urllib`` load lazily)."""
    import http.client
    import urllib.request

    def connection_class(base: type, request: urllib.request.Request) -> type:
        # http.client connects through self._create_connection (TLS, for https, is set up on
        # the socket it returns, with the URL's host name). Through a proxy the connection
        # goes to the proxy, whose policy decides where it goes next.
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            base.__init__(self, *args, **kwargs)
            if not request.has_proxy():
                self._create_connection = _guarded_create_connection

        return type(f"Guarded{base.__name__}", (base,), {"__init__": init})

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(connection_class(http.client.HTTPConnection, req), req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(connection_class(http.client.HTTPSConnection, req), req)

    class RedirectHandler(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            problem = scheme_problem(newurl, allow_http)
            if problem:
                raise SourceRefused(f"{req.full_url} redirects to {newurl}: {problem}")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(HTTPHandler(), HTTPSHandler(), RedirectHandler())


# --------------------------------------------------------------------------- the source


class _Source:
    def __init__(self, url: str, sha256: str, allow_http: bool, max_size: int, label: str,
                 path: str | None) -> None:
        self.url, self.sha256, self.allow_http, self.max_size = url, sha256, allow_http, max_size
        self.label = label
        self.path = path  # where the spec expects it (expanded from the same cache), if known


def _as_source(value: Any) -> _Source | Path:
    """An EngineSpec, its ModelSource or a manifest UrlSource -> what to fetch (or, for a
    path source, the path itself)."""
    label = ""
    if hasattr(value, "source") and hasattr(value, "model"):  # an EngineSpec
        label = f"model {value.model!r} ({value.manifest})"
        value = value.source
    url = getattr(value, "url", None)
    if not url:
        return Path(value.path)
    max_size = getattr(value, "max_size", None) or DEFAULT_MAX_SIZE
    return _Source(url, str(value.sha256).lower(), bool(getattr(value, "allow_http", False)), int(max_size),
                   label or url, getattr(value, "path", None))


def ensure_source(source: Any, cache_dir: str | os.PathLike[str], *, memo: Any = None,
                  progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The local file of a model source, downloaded and verified first where needed.

    Args:
        source: an :class:`~trtops.spec.EngineSpec`, its ``ModelSource``, or a manifest
            ``UrlSource``; a path source is returned as is.
        cache_dir: the local cache (``<cache>/sources/<sha256>.onnx``); a spec's source
            already names that path (expanded with the cache it was loaded for), which wins.
        memo: a :class:`~trtops.keys.memo.DigestMemo` (updated, not saved); default: the
            user's memo (:func:`trtops.keys.memo.user_memo_path`, loaded and saved here).
        progress: called with (bytes so far, total or None) while downloading; default: a
            progress bar on an interactive stderr, a log line otherwise.

    Returns:
        The path of a file whose sha256 is the declared one.

    Raises:
        InputError: the URL, a redirect or the address is refused, the server answers 4xx,
            the file is larger than ``max_size``, or its sha256 differs (nothing is kept).
        EnvironmentMissing: no network, connection refused, timeout, a dropped connection,
            a 5xx answer.
        CacheError: the cache's sources folder cannot be written.
    """
    found = _as_source(source)
    if isinstance(found, Path):
        return found
    target = Path(found.path) if found.path else url_source_path(cache_dir, found.sha256)
    own_memo = memo is None
    memo = memo if memo is not None else _cache_memo(target)
    if target.is_file():
        if _present_and_right(target, found, memo, remove=True):
            if own_memo:
                _save(memo)
            return target
    problem = scheme_problem(found.url, found.allow_http)
    if problem:
        raise InputError(f"{found.label}: source.url {problem}",
                         hint="models[].source.allow_http: true allows plain http")
    _download(found, target, progress)
    return target


def cached_source(source: Any, cache_dir: str | os.PathLike[str]) -> Path | None:
    """The already downloaded file of a url source when its content has the declared
    sha256 (through the cache's digest memo), else ``None``; never touches the network
    and never removes anything (``validate`` and ``plan`` read models through this).

    Args:
        source: as for :func:`ensure_source`.
        cache_dir: the local cache.
    """
    found = _as_source(source)
    if isinstance(found, Path):
        return found
    target = Path(found.path) if found.path else url_source_path(cache_dir, found.sha256)
    if not target.is_file():
        return None
    memo = _cache_memo(target)
    right = _present_and_right(target, found, memo, remove=False)
    _save(memo)
    return target if right else None


def _cache_memo(target: Path) -> Any:
    """The user's digest memo (not the cache's: reading a cache writes nothing to it)."""
    from trtops.keys.memo import DigestMemo, user_memo_path

    return DigestMemo(user_memo_path())


def _present_and_right(target: Path, source: _Source, memo: Any, *, remove: bool) -> bool:
    from trtops.keys.memo import hash_files

    try:
        sha = hash_files([str(target)], memo)[str(target)]
    except OSError:
        return False
    if sha == source.sha256:
        return True
    if not remove:
        return False
    log.warning("%s: %s has sha256 %s, not the declared %s; removing it and downloading %s again",
                source.label, target, sha, source.sha256, source.url)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    return False


def _save(memo: Any) -> None:
    with contextlib.suppress(OSError):
        memo.save()  # a read-only cache still works; the memo only saves time


def _timeout() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_VARIABLE, "") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _size_text(size: int) -> str:
    from trtops.names import format_bytes

    return format_bytes(size)


def _download(source: _Source, target: Path, progress: Callable[[int, int | None], None] | None) -> None:
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".download")
    except OSError as exc:
        raise CacheError(f"cannot write to {folder}: {exc}", hint="check the cache's permissions and free space") from exc
    tmp = Path(tmp_name)
    try:
        from trtops.fsutil import FILE_MODE, fsync_path

        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            digest, received, seconds = _fetch(source, handle, tmp, progress)
            handle.flush()
            os.fsync(handle.fileno())
        if digest != source.sha256:
            raise InputError(
                f"{source.label}: {source.url} gave a file whose sha256 is {digest} "
                f"({_size_text(received)}), but the manifest declares {source.sha256}; nothing was kept",
                hint="check source.url and source.sha256 in the manifest (sha256sum FILE gives the digest)",
            )
        os.replace(tmp, target)
        fsync_path(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    log.info("%s: downloaded %s (%s in %.1fs) to %s", source.label, source.url, _size_text(received), seconds, target)


def _fetch(source: _Source, handle: Any, tmp: Path,
           progress: Callable[[int, int | None], None] | None) -> tuple[str, int, float]:
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(source.url, headers={"User-Agent": "trtops", "Accept-Encoding": "identity"})
    started = time.monotonic()
    digest = hashlib.sha256()
    received = 0
    try:
        with _opener(source.allow_http).open(request, timeout=_timeout()) as response:
            length_text = response.headers.get("Content-Length")
            total = int(length_text) if length_text and length_text.isdigit() else None
            if total is not None and total > source.max_size:
                raise _too_big(source, total)
            with _Reporter(source, total, progress) as report:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > source.max_size:
                        raise _too_big(source, received, streamed=True)
                    digest.update(chunk)
                    try:
                        handle.write(chunk)
                    except OSError as exc:
                        raise CacheError(f"cannot write {tmp}: {exc}",
                                         hint="free space in the cache, or move it (--cache / TRTOPS_CACHE)") from exc
                    report(received)
            if total is not None and received != total:
                raise http.client.IncompleteRead(b"", total - received)
    except SourceRefused as exc:
        raise InputError(f"{source.label}: {exc}",
                         hint="a model URL may not reach link-local, metadata or (by default) loopback addresses") from None
    except urllib.error.HTTPError as exc:
        what = f"{source.label}: {source.url} answered HTTP {exc.code} {exc.reason}"
        if 300 <= exc.code < 400:  # urllib's own refusals: a redirect to another scheme, a loop
            raise InputError(what, hint="only redirects to https (or http with allow_http) are followed, "
                             f"at most {MAX_REDIRECTS}") from None
        if 400 <= exc.code < 500:
            raise InputError(what, hint="check source.url in the manifest") from None
        raise EnvironmentMissing(what, hint="the server has a problem; try again later") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(exc, http.client.IncompleteRead):
            detail = f"the connection closed after {_size_text(received)}" + (
                f" of {_size_text(received + exc.expected)}" if exc.expected else "")
        else:
            detail = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
        raise EnvironmentMissing(
            f"{source.label}: cannot download {source.url} ({detail})",
            hint=f"check the network (offline? a proxy?), then run again; or place the file at "
                 f"{url_source_path(tmp.parent.parent, source.sha256)} (it must have the declared sha256)",
        ) from None
    return digest.hexdigest(), received, time.monotonic() - started


def _too_big(source: _Source, size: int, streamed: bool = False) -> InputError:
    got = f"more than {_size_text(source.max_size)}" if streamed else _size_text(size)
    return InputError(
        f"{source.label}: {source.url} is {got}, over the source's max_size of {_size_text(source.max_size)}; "
        "nothing was kept",
        hint="if the model really is that big, raise models[].source.max_size in the manifest",
    )


class _Reporter:
    """Download progress: a rich bar on an interactive stderr, one log line otherwise."""

    def __init__(self, source: _Source, total: int | None,
                 callback: Callable[[int, int | None], None] | None) -> None:
        self.source, self.total, self.callback = source, total, callback
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if self.callback is None:
            from trtops import console

            if console.is_interactive():
                from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

                self._bar = Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                                     console=console.err(), transient=True)
                self._bar.start()
                self._task = self._bar.add_task(f"downloading {self.source.label}", total=self.total)
            else:
                size = f" ({_size_text(self.total)})" if self.total else ""
                log.info("%s: downloading %s%s", self.source.label, self.source.url, size)
        return self.report

    def report(self, received: int) -> None:
        if self.callback is not None:
            self.callback(received, self.total)
        elif self._bar is not None:
            self._bar.update(self._task, completed=received)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
