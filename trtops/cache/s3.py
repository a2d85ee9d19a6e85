"""S3-compatible remote engine cache (AWS S3, MinIO, Ceph RGW, R2, GCS interop, moto...).

The bucket holds exactly the layout of a local cache (:mod:`trtops.cache.layout`) under a
prefix, so ``aws s3 sync ./cache s3://bucket/prefix`` makes a valid remote and the reverse
makes a valid local cache::

    s3://bucket/prefix/engines/<k[:2]>/<key>/engine.plan  meta.json  accuracy.json ...
    s3://bucket/prefix/refs/<manifest>/<model>/<precision>/<target>.json
    s3://bucket/prefix/timing/<tensorrt>/<gpu-signature>.cache
    s3://bucket/prefix/locks/<name>.lock          lease objects (see trtops.cache.lease)

Entries are created with conditional writes: writers of one key serialize on a lease object
created with ``If-None-Match: *`` (taken over with ``If-Match: <etag>`` once expired, see
:mod:`trtops.cache.lease`), and ``meta.json`` is written last, also create-only. Of racing
writers exactly one creates the entry; the others find its meta.json and compare sha256
without uploading. An entry without meta.json is not an entry: files a crashed writer left
behind are removed by the next lease holder. Every object we write carries
``x-amz-meta-sha256``; downloads are hashed while they stream and renamed into place only
when the digest matches.

Client: boto3/botocore (not obstore). botocore reads credentials from the standard chain
(environment, ``~/.aws/credentials`` and ``~/.aws/config`` profiles, SSO, web identity,
container and instance metadata), has a standard retry mode (5xx, throttling, timeouts,
connection errors, with jittered backoff) and exposes ``IfNoneMatch``/``IfMatch`` on
PutObject, CompleteMultipartUpload and DeleteObject since 1.35. Reads of response bodies are
not covered by botocore's retries, so downloads resume themselves from the last byte
received with a ranged GET after a connection error (own backoff).

Configuration: ``s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1``
(also ``profile``, ``max_attempts``, ``connect_timeout``, ``read_timeout``, ``jobs``,
``addressing_style``), or the environment: ``TRTOPS_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``. Credentials never appear in URLs,
messages or logs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from trtops.cache import layout
from trtops.cache.store import ENGINE_FILE, META_FILE, PutResult
from trtops.errors import CacheError, EnvironmentMissing, InputError, RemoteError

log = logging.getLogger("trtops.cache.s3")

MiB = 1 << 20
CHUNK_SIZE = 1 * MiB  # read/hash/write granularity of a streamed body
# Bodies of at least this size are hashed and written on a helper thread while the
# receiving thread keeps reading (smaller ones: not worth a thread), on machines with at
# least PIPELINE_MIN_CPUS usable CPUs. With fewer, every CPU is already busy receiving,
# hashing and writing the parallel downloads (and serving them, for a local server): a
# second thread per body only adds GIL handoffs (measured on 2 vCPUs: +1 CPU-s per GB).
PIPELINE_MIN_BYTES = 4 * MiB
PIPELINE_MIN_CPUS = 8
SINK_QUEUE_CHUNKS = 8  # chunks received ahead of the hashing/writing thread, per body
WRITEBACK_BYTES = 8 * MiB  # a file to be fsynced gets its writeback started this often
MULTIPART_THRESHOLD = 64 * MiB  # above this: multipart uploads, parallel ranged downloads
PART_SIZE = 16 * MiB
DEFAULT_JOBS = 8
DEFAULT_MAX_ATTEMPTS = 4  # botocore standard mode: attempts per request, first included
DEFAULT_STREAM_RETRIES = 5  # resumes of one interrupted download
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 60.0
SHA_METADATA = "sha256"  # x-amz-meta-sha256

Progress = Callable[[int], None]

_OPTIONS = {
    "endpoint_url": str,
    "region": str,
    "profile": str,
    "max_attempts": int,
    "connect_timeout": float,
    "read_timeout": float,
    "jobs": int,
    "addressing_style": str,
    "stream_retries": int,
    "multipart_threshold": int,
    "part_size": int,
    "lock_timeout": float,
    "lease_ttl": float,
}


# --------------------------------------------------------------------------- configuration


def _redact_url(url: str) -> str:
    """An endpoint URL without user info or query (either could carry secrets)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number
    except ValueError:
        return "<invalid URL>"
    netloc = parts.hostname or ""
    if port:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/prefix?options`` URL."""

    bucket: str
    prefix: str  # no leading or trailing '/'
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_s3_url(url: str) -> S3Location:
    """Parse ``s3://bucket[/prefix][?endpoint_url=...&region=...]``.

    Args:
        url: The remote URL as the user wrote it.

    Returns:
        The bucket, the prefix (normalized) and typed options.

    Raises:
        InputError: when the URL is not an s3:// URL or names an unknown option.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InputError(f"{url!r} is not an S3 URL", hint="write s3://bucket/prefix")
    if "@" in parts.netloc:
        raise InputError("credentials in the S3 URL are not supported",
                         hint="use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")
    bucket = parts.netloc
    prefix = parts.path.strip("/")
    if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
        raise InputError(f"invalid prefix {prefix!r} in {url!r}",
                         hint="use a prefix like s3://bucket/team/engines")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        kind = _OPTIONS.get(name)
        if kind is None:
            raise InputError(f"unknown option {name!r} in the S3 URL",
                             hint=f"known options: {', '.join(sorted(_OPTIONS))}")
        try:
            options[name] = kind(value)
        except ValueError:
            raise InputError(f"option {name}={value!r} in the S3 URL is not a {kind.__name__}",
                             hint=f"write e.g. {name}=4") from None
    return S3Location(bucket=bucket, prefix=prefix, options=options)


def _boto():
    """Import boto3 lazily with a clear error when it is missing or too old."""
    try:
        import boto3
        import botocore
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EnvironmentMissing(
            "the S3 remote cache needs boto3",
            hint="pip install 'trtops[s3]' (or pip install 'boto3>=1.35')",
        ) from exc
    return boto3, botocore


# --------------------------------------------------------------------------- errors

def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _is_not_found(exc: BaseException) -> bool:
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound") or (
        _status(exc) == 404 and _error_code(exc) != "NoSuchBucket")


def _is_precondition_failed(exc: BaseException) -> bool:
    # 409 ConditionalRequestConflict: S3 lost a race between two conditional writers.
    return _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict") or \
        _status(exc) in (412, 409)


def _is_transient(exc: BaseException) -> bool:
    """Errors worth our own retry: connection trouble, timeouts, 5xx, a broken body."""
    _, botocore = _boto()
    import urllib3.exceptions

    # ConnectionError is not an HTTPClientError; ResponseStreamingError is botocore >= 1.29.
    names = ("HTTPClientError", "ConnectionError", "ResponseStreamingError", "IncompleteReadError")
    kinds = tuple(getattr(botocore.exceptions, n) for n in names if hasattr(botocore.exceptions, n))
    if isinstance(exc, kinds + (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        return _status(exc) >= 500 or _error_code(exc) in ("SlowDown", "RequestTimeout",
                                                          "InternalError", "ServiceUnavailable")
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


def _local_error(exc: OSError, relative: str) -> CacheError:
    from trtops.cache.local import write_error

    return write_error(exc, f"the download of {relative}")


def _write_local(write: Callable[..., Any], *args: Any, relative: str = "") -> Any:
    """Call a local write (file write, pwrite, flush, fsync) of a download. Its OSError (a
    full disk, a file size limit) is not a network error: it becomes a CacheError at once,
    never a retry and never 'cannot reach the remote cache'."""
    try:
        return write(*args)
    except OSError as exc:
        raise _local_error(exc, relative) from exc


def _pwrite_all(fd: int, data: Any, offset: int, relative: str) -> None:
    """Write all of ``data`` at ``offset`` (a pwrite may write less, e.g. at a file size
    limit, where the next one raises)."""
    view = memoryview(data)
    try:
        while view:
            written = _write_local(os.pwrite, fd, view, offset, relative=relative)
            if written <= 0:  # pragma: no cover - a regular file does not do this
                raise _local_error(OSError(errno.EIO, "short write"), relative)
            view = view[written:]
            offset += written
    finally:
        view.release()


def _lap(timings: dict[str, float] | None, name: str, since: float) -> float:
    """Add the seconds since ``since`` to ``timings[name]``; returns now."""
    now = time.perf_counter()
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + now - since
    return now


def _file_mode() -> int:
    from trtops.fsutil import FILE_MODE

    return FILE_MODE


def _usable_cpus() -> int:
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


class _Abandoned(Exception):
    """A part download given up because another part of the same file failed."""


def _in_order(current: Any, others: Iterable[Any]) -> Any:
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


class _FileSink:
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
        _pwrite_all(self.fd, chunk, self.offset, self.relative)
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


# --------------------------------------------------------------------------- the store


class S3Store:
    """An engine cache in an S3-compatible bucket. Implements :class:`EntryStore`.

    Thread-safe: one boto3 client is shared by all threads (clients are thread-safe).

    Args:
        bucket: Bucket name.
        prefix: Key prefix inside the bucket ('' for the bucket root).
        endpoint_url: S3-compatible endpoint (default: AWS, or TRTOPS_S3_ENDPOINT_URL /
            AWS_ENDPOINT_URL from the environment).
        region: Region (default: the standard chain, else us-east-1).
        profile: Named profile of ~/.aws/config.
        jobs: Parallel transfers (parts of one file, files of one entry).
        max_attempts: botocore attempts per request (standard retry mode).
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds without data before a read fails.
        addressing_style: 'path' (default with a custom endpoint), 'virtual' or 'auto'.
        stream_retries: Resumes of an interrupted download before giving up.
        multipart_threshold: Files larger than this (bytes) use multipart uploads and
            parallel ranged downloads.
        part_size: Bytes per part (S3 needs at least 5 MiB for all but the last part).
        lock_timeout: Seconds a writer waits for another writer of the same key.
        lease_ttl: Lifetime of write leases and locks (renewed every third of it while
            held); a crashed holder blocks others for at most this long.
    """

    #: fetch_file accepts ``expected_sha256`` and ``progress`` (see :mod:`trtops.cache.transfer`).
    verified_fetch = True
    #: fetch_file also accepts ``timings`` (seconds per phase of each download).
    fetch_timings = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        jobs: int = DEFAULT_JOBS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        addressing_style: str | None = None,
        stream_retries: int = DEFAULT_STREAM_RETRIES,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        lock_timeout: float = 600.0,
        lease_ttl: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = (endpoint_url or os.environ.get("TRTOPS_S3_ENDPOINT_URL")
                             or os.environ.get("AWS_ENDPOINT_URL_S3")
                             or os.environ.get("AWS_ENDPOINT_URL") or None)
        self.region = region
        self.profile = profile
        self.jobs = max(1, int(jobs))
        self.max_attempts = max(1, int(max_attempts))
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.addressing_style = addressing_style or ("path" if self.endpoint_url else "auto")
        self.stream_retries = max(0, int(stream_retries))
        self.part_size = max(5 * MiB, int(part_size))
        self.multipart_threshold = max(self.part_size, int(multipart_threshold))
        self.lock_timeout = float(lock_timeout)
        self.lease_ttl = float(lease_ttl)
        self._client_lock = threading.Lock()
        self._client: Any = None

    # ----------------------------------------------------------------- plumbing

    @property
    def endpoint(self) -> str:
        """The endpoint for messages (no credentials, no query)."""
        return _redact_url(self.endpoint_url) if self.endpoint_url else "AWS S3"

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"

    @property
    def client(self) -> Any:
        """The shared boto3 S3 client, created on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        boto3, botocore = _boto()
        from botocore.config import Config

        model = botocore.session.get_session().get_service_model("s3")
        if "IfNoneMatch" not in model.operation_model("PutObject").input_shape.members:
            raise EnvironmentMissing(
                f"boto3/botocore {botocore.__version__} cannot make create-only writes",
                hint="pip install -U 'boto3>=1.35' (If-None-Match on PutObject)",
            )
        try:
            session = boto3.session.Session(profile_name=self.profile)
        except botocore.exceptions.ProfileNotFound as exc:
            raise RemoteError(f"AWS profile {self.profile!r} not found",
                              hint="check ~/.aws/config or AWS_PROFILE") from exc
        region = (self.region or os.environ.get("AWS_REGION") or session.region_name
                  or "us-east-1")
        settings: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": self.max_attempts},
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            # Parts of several files in flight at once, plus small requests beside them
            # (entries in parallel, each maybe with parallel ranges of a large engine).
            "max_pool_connections": min(128, max(10, self.jobs * self.jobs + 4)),
            "s3": {"addressing_style": self.addressing_style},
            "tcp_keepalive": True,
        }
        # botocore >= 1.36 adds CRC checksums to every upload by default; several
        # S3-compatible servers reject them, and we verify sha256 ourselves.
        for name in ("request_checksum_calculation", "response_checksum_validation"):
            try:
                Config(**{name: "when_required"})
                settings[name] = "when_required"
            except TypeError:  # older botocore: nothing to turn off
                pass
        return session.client("s3", endpoint_url=self.endpoint_url, region_name=region,
                               config=Config(**settings))

    def _name(self, relative: str) -> str:
        return self._root + relative

    def _translate(self, exc: BaseException, action: str, what: str = "") -> CacheError:
        """A user-facing error for a failed request (never includes credentials)."""
        _, botocore = _boto()
        target = f"{self.url} ({self.endpoint})"
        if isinstance(exc, RemoteError):
            return exc
        if isinstance(exc, (botocore.exceptions.NoCredentialsError,
                            botocore.exceptions.PartialCredentialsError,
                            botocore.exceptions.CredentialRetrievalError)):
            return RemoteError(
                f"no usable AWS credentials for {target}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with "
                     "a profile in ~/.aws/credentials",
            )
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _error_code(exc)
            if code == "NoSuchBucket":
                return RemoteError(f"bucket {self.bucket!r} does not exist at {self.endpoint}",
                                   hint=f"create it (aws s3 mb s3://{self.bucket}) or fix the URL")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                        "ExpiredToken", "InvalidToken", "AllAccessDisabled") or _status(exc) == 403:
                return RemoteError(
                    f"access denied to {target} while trying to {action} {what}".rstrip(),
                    hint="check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the "
                         "bucket policy",
                )
            message = exc.response.get("Error", {}).get("Message", "")
            return RemoteError(
                f"S3 refused to {action} {what} at {target}: {code or _status(exc)} {message}".strip(),
                hint="retry later; if it persists check the server logs",
            )
        if _is_transient(exc):
            return RemoteError(
                f"cannot reach the remote cache {target} (while trying to "
                f"{' '.join(filter(None, (action, what)))}): {type(exc).__name__}",
                hint="check that the server is up and the endpoint is right "
                     "(?endpoint_url= in the URL, TRTOPS_S3_ENDPOINT_URL or AWS_ENDPOINT_URL); "
                     f"requests were retried {self.max_attempts} times",
            )
        return RemoteError(f"S3 request to {action} {what} at {target} failed: {exc}",
                           hint="run with -v for details")

    def _call(self, action: str, what: str, method: str, **kwargs: Any) -> Any:
        """One client call; botocore retries it, we translate what still fails."""
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except CacheError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated; original chained
            _, botocore = _boto()
            if isinstance(exc, botocore.exceptions.ClientError) and (
                    _is_not_found(exc) or _is_precondition_failed(exc)):
                raise
            raise self._translate(exc, action, what) from exc

    # ----------------------------------------------------------------- objects

    def _head(self, relative: str) -> dict | None:
        _, botocore = _boto()
        try:
            return self._call("read", relative, "head_object", Key=self._name(relative))
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc):
                return None
            raise self._translate(exc, "read", relative) from exc

    def _get_bytes(self, relative: str) -> tuple[bytes, dict] | None:
        """Whole small object and its response (ETag, Metadata); None when absent."""
        _, botocore = _boto()
        for attempt in range(self.stream_retries + 1):
            try:
                response = self._call("read", relative, "get_object", Key=self._name(relative))
                return response["Body"].read(), response
            except botocore.exceptions.ClientError as exc:
                if _is_not_found(exc):
                    return None
                raise self._translate(exc, "read", relative) from exc
            except CacheError:
                raise
            except Exception as exc:  # noqa: BLE001 - body read broke: retry whole object
                if not _is_transient(exc) or attempt == self.stream_retries:
                    raise self._translate(exc, "read", relative) from exc
                self._backoff(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _put_bytes(self, relative: str, data: bytes, *, create_only: bool = False,
                   if_match: str | None = None, sha256: str | None = None) -> str | None:
        """PUT a small object. Returns its ETag, or None when a condition failed."""
        _, botocore = _boto()
        kwargs: dict[str, Any] = {
            "Key": self._name(relative), "Body": data,
            "Metadata": {SHA_METADATA: sha256 or hashlib.sha256(data).hexdigest()},
        }
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        try:
            return self._call("write", relative, "put_object", **kwargs).get("ETag", "")
        except botocore.exceptions.ClientError as exc:
            if _is_precondition_failed(exc) or (if_match is not None and _is_not_found(exc)):
                return None
            raise self._translate(exc, "write", relative) from exc

    def _delete(self, relative: str, if_match: str | None = None) -> bool:
        """Delete one object; False when ``if_match`` did not hold. Missing is fine."""
        _, botocore = _boto()
        kwargs: dict[str, Any] = {"Key": self._name(relative)}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        try:
            self._call("delete", relative, "delete_object", **kwargs)
            return True
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc):
                return if_match is None
            if _is_precondition_failed(exc):
                return False
            raise self._translate(exc, "delete", relative) from exc

    def _list(self, relative_prefix: str) -> Iterator[dict]:
        """All objects under a relative prefix (paginated), with Key made relative."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._name(relative_prefix)):
                for item in page.get("Contents", ()):
                    item = dict(item)
                    item["Key"] = item["Key"][len(self._root):]
                    yield item
        except CacheError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, "list", relative_prefix) from exc

    def _backoff(self, attempt: int) -> None:
        # Full jitter, as botocore's standard mode does: racing clients spread out.
        time.sleep(random.uniform(0, min(8.0, 0.25 * (2 ** attempt))))

    # Conditional primitives used by trtops.cache.lease (any relative object name).
    def create_object(self, relative: str, data: bytes) -> str | None:
        """Create-only PUT (If-None-Match: *). Returns the ETag, or None when it exists."""
        return self._put_bytes(relative, data, create_only=True)

    def read_object(self, relative: str) -> tuple[bytes, str] | None:
        """An object's bytes and ETag, or None when absent."""
        got = self._get_bytes(relative)
        return None if got is None else (got[0], got[1].get("ETag", ""))

    def replace_object(self, relative: str, data: bytes, if_match: str) -> str | None:
        """PUT only while the object still has ETag ``if_match``; None when it changed."""
        return self._put_bytes(relative, data, if_match=if_match)

    def delete_object(self, relative: str, if_match: str | None = None) -> bool:
        """Delete (only while the ETag is ``if_match`` when given); False when it changed."""
        return self._delete(relative, if_match)

    # ----------------------------------------------------------------- transfers

    def upload_file(self, relative: str, source: Path | bytes, *, create_only: bool,
                    sha256: str | None = None, progress: Progress | None = None) -> bool:
        """Upload a file or bytes; multipart with ``jobs`` parallel parts when large.

        Args:
            relative: Object name under the prefix.
            source: A path (streamed) or bytes.
            create_only: Use If-None-Match: * (on CompleteMultipartUpload for multipart).
            sha256: The content digest if known (stored as x-amz-meta-sha256).
            progress: Called with byte counts as they are sent.

        Returns:
            True when written, False when ``create_only`` and the object already existed.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            etag = self._put_bytes(relative, data, create_only=create_only, sha256=sha256)
            if progress and etag is not None:
                progress(len(data))
            return etag is not None
        path = Path(source)
        size = path.stat().st_size
        if sha256 is None:
            sha256 = file_sha256(path)
        if size <= self.multipart_threshold:
            _, botocore = _boto()
            kwargs: dict[str, Any] = {"Key": self._name(relative),
                                      "Metadata": {SHA_METADATA: sha256}}
            if create_only:
                kwargs["IfNoneMatch"] = "*"
            with open(path, "rb") as handle:
                try:
                    self._call("upload", relative, "put_object", Body=handle, **kwargs)
                except botocore.exceptions.ClientError as exc:
                    if create_only and _is_precondition_failed(exc):
                        return False
                    raise self._translate(exc, "upload", relative) from exc
            if progress:
                progress(size)
            return True
        return self._upload_multipart(relative, path, size, sha256, create_only, progress)

    def _upload_multipart(self, relative: str, path: Path, size: int, sha256: str,
                          create_only: bool, progress: Progress | None) -> bool:
        _, botocore = _boto()
        name = self._name(relative)
        upload = self._call("upload", relative, "create_multipart_upload", Key=name,
                            Metadata={SHA_METADATA: sha256})
        upload_id = upload["UploadId"]
        part_size = self.part_size
        count = (size + part_size - 1) // part_size
        fd = os.open(path, os.O_RDONLY)
        try:
            def send(number: int) -> dict:
                offset = (number - 1) * part_size
                body = os.pread(fd, min(part_size, size - offset), offset)
                response = self._call("upload", relative, "upload_part", Key=name,
                                      UploadId=upload_id, PartNumber=number, Body=body)
                if progress:
                    progress(len(body))
                return {"ETag": response["ETag"], "PartNumber": number}

            with ThreadPoolExecutor(max_workers=min(self.jobs, count),
                                    thread_name_prefix="trtops-s3-up") as pool:
                parts = list(pool.map(send, range(1, count + 1)))
            kwargs: dict[str, Any] = {"Key": name, "UploadId": upload_id,
                                      "MultipartUpload": {"Parts": parts}}
            if create_only:
                kwargs["IfNoneMatch"] = "*"
            try:
                self._call("upload", relative, "complete_multipart_upload", **kwargs)
            except botocore.exceptions.ClientError as exc:
                if create_only and _is_precondition_failed(exc):
                    self._abort(name, upload_id)
                    return False
                raise self._translate(exc, "upload", relative) from exc
            return True
        except BaseException:
            self._abort(name, upload_id)
            raise
        finally:
            os.close(fd)

    def _abort(self, name: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):  # best effort: lifecycle rules clean the rest
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)

    def download_file(self, relative: str, dest: Path, *, expected_sha256: str | None = None,
                      progress: Progress | None = None, fsync: bool = True,
                      timings: dict[str, float] | None = None) -> bool:
        """Download an object to ``dest`` atomically, verifying sha256 before the rename.

        The body is hashed while it streams; an interrupted stream resumes with a ranged GET
        from the last byte received (up to ``stream_retries`` times, with backoff). Large
        objects are fetched as ``jobs`` parallel ranges. With ``fsync``, writeback of the
        file starts every few MiB while it downloads (see :func:`start_writeback`), so the
        final fsync waits only for the tail instead of the whole file.

        Args:
            relative: Object name under the prefix.
            dest: Final path; its directory is created. A temporary file next to it is
                renamed onto it only after the digest matched; it is removed on any failure.
            expected_sha256: Digest the content must have (default: the object's
                x-amz-meta-sha256, when present).
            progress: Called with byte counts as they arrive (a resume does not repeat any).
            fsync: Flush the file to disk before the rename (skip when the file is staged
                and copied again, e.g. into a local cache that fsyncs its own copy).
            timings: When given, seconds are added under ``request`` (until the response
                headers), ``body`` (receiving, hashing, writing) and ``fsync``.

        Returns:
            False when the object does not exist (nothing written).

        Raises:
            CacheError: digest mismatch (corrupt or replaced object), or a local write
                failure (full disk, file size limit).
            RemoteError: the server could not be reached or kept failing.
        """
        clock = time.perf_counter()
        # One GET, no HEAD first: its headers give size, ETag and the recorded sha256.
        opened = self._open(relative)
        clock = _lap(timings, "request", clock)
        if opened is None:
            return False
        body, response = opened
        size = int(response.get("ContentLength", 0))
        etag = response.get("ETag")
        expected = expected_sha256 or (response.get("Metadata") or {}).get(SHA_METADATA)
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part",
                                            dir=dest.parent)
        except BaseException as exc:
            body.close()
            if isinstance(exc, OSError):
                raise _local_error(exc, relative) from exc
            raise
        tmp = Path(tmp_name)
        try:
            try:
                # mkstemp makes 0600 files; a cache shared by several users needs what
                # open() would have made.
                with contextlib.suppress(OSError):
                    os.fchmod(fd, _file_mode())
                if size > self.multipart_threshold and self.jobs > 1:
                    body.close()  # large: parallel ranges instead of this one stream
                    digest = self._download_ranged(relative, fd, size, etag, progress,
                                                   writeback=fsync)
                else:
                    digest = self._download_stream(relative, fd, size, etag, progress, body,
                                                   writeback=fsync)
                clock = _lap(timings, "body", clock)
                if fsync:
                    _write_local(os.fsync, fd, relative=relative)
                    _lap(timings, "fsync", clock)
            finally:
                os.close(fd)
            if expected and digest != expected:
                raise CacheError(
                    f"sha256 mismatch for {self.url}/{relative}: expected {expected[:16]}..., "
                    f"got {digest[:16]}...",
                    hint="the remote object is corrupt or was replaced; nothing was written",
                )
            os.replace(tmp, dest)
            return True
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def _get_range(self, relative: str, start: int, end: int | None, etag: str | None) -> Any:
        """A GetObject response body for bytes [start, end] (end inclusive, None = to EOF)."""
        _, botocore = _boto()
        kwargs: dict[str, Any] = {"Key": self._name(relative)}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        if etag:
            kwargs["IfMatch"] = etag  # a replaced object must not be stitched onto the old
        try:
            # Raw call: the caller classifies failures and resumes after transient ones.
            return self.client.get_object(Bucket=self.bucket, **kwargs)["Body"]
        except botocore.exceptions.ClientError as exc:
            if _is_not_found(exc) or _is_precondition_failed(exc):
                raise CacheError(f"{self.url}/{relative} disappeared or changed during download",
                                 hint="retry; another writer replaced or deleted it") from exc
            if _is_transient(exc):
                raise
            raise self._translate(exc, "download", relative) from exc

    def _open(self, relative: str) -> tuple[Any, dict] | None:
        """GET an object: (streaming body, response), or None when it does not exist.
        Transient failures are retried (after botocore's own attempts) with backoff."""
        _, botocore = _boto()
        for attempt in range(self.stream_retries + 1):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._name(relative))
                return response["Body"], response
            except botocore.exceptions.ClientError as exc:
                if _is_not_found(exc):
                    return None
                if not _is_transient(exc) or attempt == self.stream_retries:
                    raise self._translate(exc, "download", relative) from exc
            except Exception as exc:  # noqa: BLE001 - classified below
                if not _is_transient(exc) or attempt == self.stream_retries:
                    raise self._translate(exc, "download", relative) from exc
            self._backoff(attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def _download_stream(self, relative: str, fd: int, size: int, etag: str | None,
                         progress: Progress | None, body: Any = None, *,
                         writeback: bool = False) -> str:
        """One body (resumed with ranged GETs after interruptions) into ``fd`` from offset 0;
        returns its sha256."""
        # Large bodies: hashing and writing on a helper thread, so this one keeps receiving.
        sink = _FileSink(fd, relative, writeback=writeback,
                         threaded=size >= PIPELINE_MIN_BYTES
                         and _usable_cpus() >= PIPELINE_MIN_CPUS)
        received = 0
        failures = 0
        try:
            while True:
                try:
                    if body is None:
                        body = self._get_range(relative, received, None, etag)
                    try:
                        while True:
                            chunk = body.read(CHUNK_SIZE)
                            if not chunk:
                                break
                            sink.write(chunk)
                            received += len(chunk)
                            if progress:
                                progress(len(chunk))
                    finally:
                        body.close()
                        body = None
                    if received != size:
                        raise ConnectionError(f"short read: {received} of {size} bytes")
                    return sink.finish()
                except CacheError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below
                    if not _is_transient(exc) or failures >= self.stream_retries:
                        raise self._translate(exc, "download", relative) from exc
                    failures += 1
                    log.debug("download of %s interrupted (%s); resuming at byte %d",
                              relative, type(exc).__name__, received)
                self._backoff(failures)
        finally:
            sink.close()

    def _download_range(self, relative: str, start: int, end: int, etag: str | None,
                        progress: Progress | None,
                        stop: threading.Event | None = None) -> bytearray:
        """Bytes [start, end] with resume on interruption (given up early once ``stop`` is
        set: another part failed and the whole download is abandoned)."""
        length = end - start + 1
        buffer = bytearray(length)  # filled in place: no regrowing, one copy per chunk
        view = memoryview(buffer)
        received = 0
        failures = 0
        try:
            while True:
                if stop is not None and stop.is_set():
                    raise _Abandoned(relative)
                try:
                    body = self._get_range(relative, start + received, end, etag)
                    try:
                        while True:
                            chunk = body.read(CHUNK_SIZE)
                            if not chunk:
                                break
                            if received + len(chunk) > length:
                                raise ConnectionError(f"long range read: more than {length}")
                            view[received:received + len(chunk)] = chunk
                            received += len(chunk)
                            if progress:
                                progress(len(chunk))
                    finally:
                        body.close()
                    if received != length:
                        raise ConnectionError(f"short range read: {received} of {length}")
                    return buffer
                except CacheError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below
                    if not _is_transient(exc) or failures >= self.stream_retries:
                        raise self._translate(exc, "download", relative) from exc
                    failures += 1
                self._backoff(failures)
        finally:
            view.release()

    def _download_ranged(self, relative: str, fd: int, size: int, etag: str | None,
                         progress: Progress | None, *, writeback: bool = False) -> str:
        """Parallel ranged GETs written in place; returns the sha256 of the whole object.

        Worker threads receive a part each and write it at its offset; this thread hashes
        the parts in order as they complete, so no receiver ever waits for the hash. At
        most ``jobs + 2`` parts are requested ahead of the next one to hash, which bounds
        memory to that many parts.
        """
        part_size = self.part_size
        count = (size + part_size - 1) // part_size
        ahead = self.jobs + 2
        digest = hashlib.sha256()
        stop = threading.Event()

        def fetch(index: int) -> bytearray:
            start = index * part_size
            end = min(size, start + part_size) - 1
            data = self._download_range(relative, start, end, etag, progress, stop)
            _pwrite_all(fd, data, start, relative)
            if writeback:
                start_writeback(fd, start, len(data))
            return data

        with ThreadPoolExecutor(max_workers=min(self.jobs, count),
                                thread_name_prefix="trtops-s3-down") as pool:
            pending: dict[int, Any] = {}
            submitted = 0
            try:
                for index in range(count):
                    while submitted < count and submitted < index + ahead:
                        pending[submitted] = pool.submit(fetch, submitted)
                        submitted += 1
                    digest.update(_in_order(pending.pop(index), pending.values()))
            except BaseException:
                stop.set()
                for future in pending.values():
                    future.cancel()
                raise
        return digest.hexdigest()

    # ----------------------------------------------------------------- entries

    def _entry(self, key: str, name: str) -> str:
        layout.check_file_name(name)
        return f"{layout.entry_prefix(key)}/{name}"

    def has_entry(self, key: str) -> bool:
        """True when the entry is complete (its meta.json exists)."""
        return self._head(self._entry(key, META_FILE)) is not None

    def read_meta(self, key: str) -> dict | None:
        """The entry's meta.json, or None when there is no complete entry."""
        data = self.read_file(key, META_FILE)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise CacheError(f"{self.url}: meta.json of {key[:12]} is not JSON",
                             hint="delete the entry (trtops gc) and push it again") from exc

    def list_keys(self) -> Iterator[str]:
        """Keys of all complete entries (one listing of engines/)."""
        for item in self._list(f"{layout.ENGINES_DIR}/"):
            parts = item["Key"].split("/")
            if (len(parts) == 4 and parts[3] == META_FILE and layout.KEY_RE.match(parts[2])
                    and parts[1] == parts[2][:2]):
                yield parts[2]

    def read_file(self, key: str, name: str) -> bytes | None:
        """One file of an entry, or None when absent."""
        got = self._get_bytes(self._entry(key, name))
        return None if got is None else got[0]

    def file_sha256(self, key: str, name: str) -> str | None:
        """The recorded sha256 of an entry file (x-amz-meta-sha256), None if absent/unknown."""
        head = self._head(self._entry(key, name))
        return None if head is None else (head.get("Metadata") or {}).get(SHA_METADATA)

    def fetch_file(self, key: str, name: str, dest: Path, *, expected_sha256: str | None = None,
                   progress: Progress | None = None, fsync: bool = True,
                   timings: dict[str, float] | None = None) -> bool:
        """Stream one file of an entry to ``dest`` atomically; False when absent.

        Args:
            key: Engine key.
            name: File name inside the entry.
            dest: Destination path (written through a temporary file and a rename).
            expected_sha256: Digest to verify before the rename (default: the object's).
            progress: Byte-count callback.
            fsync: Flush to disk before the rename.
            timings: Seconds per phase are added to it (see :meth:`download_file`).

        Returns:
            True when written, False when the entry has no such file.
        """
        return self.download_file(self._entry(key, name), Path(dest),
                                  expected_sha256=expected_sha256, progress=progress, fsync=fsync,
                                  timings=timings)

    def put_entry(self, key: str, files: Mapping[str, Path | bytes], meta: dict, *,
                  progress: Progress | None = None,
                  digests: Mapping[str, str] | None = None) -> PutResult:
        """Create an entry, create-only: of racing writers exactly one creates it.

        Writers of one key serialize on a lease (``leases/lock-entry-<key>.lock``, a
        create-only object renewed while held, expiring if its writer dies). The holder
        checks again for meta.json, removes files a dead writer left without meta.json
        (never an entry), uploads the files in parallel and creates meta.json last with
        If-None-Match: *. Writers that waited find meta.json and compare engine sha256,
        without uploading anything.

        Args:
            key: Engine key.
            files: File name -> path or bytes (meta.json is written from ``meta``).
            meta: The entry's metadata.
            progress: Byte-count callback for uploads.
            digests: Known sha256 of some files (already verified by the caller), so large
                files are not hashed twice.

        Returns:
            PutResult(created, identical): identical compares the existing engine's sha256.
        """
        from trtops.cache.entries import file_digest, json_bytes
        from trtops.cache.lease import hold_lock

        layout.check_key(key)
        if META_FILE in files:
            raise ValueError("meta.json is written from `meta`, not passed in `files`")
        files = {layout.check_file_name(name): source for name, source in files.items()}
        known = dict(digests or {})
        digests = {name: known.get(name) or file_digest(src)[0] for name, src in files.items()}
        ours = digests.get(ENGINE_FILE) or meta.get("engine_sha256")
        existing = self._existing_meta(key)
        if existing is not None:
            return PutResult(created=False, identical=self._same_engine(existing, ours))
        prefix = layout.entry_prefix(key) + "/"
        with hold_lock(self, f"entry-{key}", timeout=self.lock_timeout, ttl=self.lease_ttl,
                       poll=0.05) as lease:
            existing = self._existing_meta(key)
            if existing is not None:
                return PutResult(created=False, identical=self._same_engine(existing, ours))
            leftovers = [item["Key"] for item in self._list(prefix)]
            if leftovers:
                log.info("%s: removing %d file(s) of an interrupted write of %s", self.url,
                         len(leftovers), key[:12])
                self._delete_prefix(prefix, keep_meta=False)

            def upload(name: str) -> bool:
                return self.upload_file(self._entry(key, name), files[name], create_only=False,
                                        sha256=digests[name], progress=progress)

            if files:
                with ThreadPoolExecutor(max_workers=min(self.jobs, len(files)),
                                        thread_name_prefix="trtops-s3-put") as pool:
                    list(pool.map(upload, sorted(files)))
            if lease.lost:
                raise RemoteError(
                    f"lost the write lease of {key[:12]} on {self.url} during the upload",
                    hint="the upload stalled longer than the lease lifetime; push again",
                )
            # Same bytes as a local cache writes (aws s3 sync in either direction stays valid).
            body = json_bytes(meta)
            if self._put_bytes(self._entry(key, META_FILE), body, create_only=True) is None:
                existing = self._existing_meta(key)
                return PutResult(created=False,
                                 identical=existing is not None and self._same_engine(existing, ours))
        return PutResult(created=True, identical=True)

    def _existing_meta(self, key: str) -> dict | None:
        try:
            return self.read_meta(key)
        except CacheError as exc:
            if isinstance(exc, RemoteError):
                raise
            return {}  # present but unreadable: an entry exists, it is not ours to fix here

    def _same_engine(self, existing: Mapping[str, Any], ours: str | None) -> bool:
        theirs = existing.get("engine_sha256")
        if not theirs and "key" in existing:
            theirs = self._remote_engine_sha(str(existing["key"]))
        return bool(ours) and theirs == ours

    def _remote_engine_sha(self, key: str) -> str | None:
        """sha256 of the remote engine.plan: from its metadata, else by hashing it."""
        relative = self._entry(key, ENGINE_FILE)
        head = self._head(relative)
        if head is None:
            return None
        recorded = (head.get("Metadata") or {}).get(SHA_METADATA)
        if recorded:
            return recorded
        # Uploaded by another tool (aws s3 sync): no metadata; hash the content.
        with tempfile.TemporaryDirectory(prefix="trtops-s3-") as tmp:
            target = Path(tmp) / ENGINE_FILE
            if not self.download_file(relative, target):
                return None
            return file_sha256(target)

    def replace_file(self, key: str, name: str, data: bytes) -> None:
        """Atomically replace a mutable file (accuracy.json) of an existing entry."""
        if name not in layout.MUTABLE_FILES:
            raise ValueError(f"{name} of an entry is immutable; only "
                             f"{', '.join(layout.MUTABLE_FILES)} may be replaced")
        if not self.has_entry(key):
            raise CacheError(f"no entry {key[:12]} in {self.url}",
                             hint="push the entry before replacing its files")
        self._put_bytes(self._entry(key, name), bytes(data))

    def delete_entry(self, key: str) -> None:
        """Remove an entry: meta.json first, so readers never see a half-deleted entry."""
        self._delete_prefix(layout.entry_prefix(key) + "/", keep_meta=False)

    def _delete_prefix(self, relative_prefix: str, *, keep_meta: bool) -> None:
        names = [item["Key"] for item in self._list(relative_prefix)]
        meta = [n for n in names if n.endswith("/" + META_FILE)]
        if not keep_meta:
            for name in meta:
                self._delete(name)
        rest = [n for n in names if n not in meta]
        for start in range(0, len(rest), 1000):
            batch = rest[start:start + 1000]
            self._call("delete", relative_prefix, "delete_objects",
                       Delete={"Objects": [{"Key": self._name(n)} for n in batch], "Quiet": True})

    # ----------------------------------------------------------------- refs, timing

    def read_ref(self, ref: str) -> dict | None:
        """The last-key record of a logical engine, or None."""
        got = self._get_bytes(layout.ref_path(ref))
        if got is None:
            return None
        try:
            return json.loads(got[0])
        except ValueError:
            return None

    def write_ref(self, ref: str, data: dict) -> None:
        """Write a ref record (a PUT replaces an object atomically)."""
        self._put_bytes(layout.ref_path(ref), json.dumps(data, indent=2, sort_keys=True).encode())

    def list_refs(self) -> Iterator[tuple[str, dict]]:
        """All refs with their records (fetched in parallel)."""
        prefix = f"{layout.REFS_DIR}/"
        refs = [ref for ref in (layout.ref_from_path(item["Key"][len(prefix):])
                                for item in self._list(prefix)) if ref]
        if not refs:
            return
        with ThreadPoolExecutor(max_workers=min(self.jobs, len(refs))) as pool:
            for ref, record in zip(refs, pool.map(self.read_ref, refs)):
                if record is not None:
                    yield ref, record

    def read_timing_cache(self, tensorrt: str, gpu_signature: str) -> bytes | None:
        """The serialized timing cache for a TensorRT version and GPU signature."""
        got = self._get_bytes(layout.timing_path(tensorrt, gpu_signature))
        return None if got is None else got[0]

    def write_timing_cache(self, tensorrt: str, gpu_signature: str, data: bytes) -> None:
        """Replace the timing cache (callers merge under :meth:`lock`)."""
        self._put_bytes(layout.timing_path(tensorrt, gpu_signature), bytes(data))

    def lock(self, name: str, timeout: float = 600.0):
        """An exclusive named lock across machines: a lease object renewed while held."""
        from trtops.cache.lease import hold_lock

        return hold_lock(self, name, timeout=timeout, ttl=self.lease_ttl)


# --------------------------------------------------------------------------- helpers


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed.

    Args:
        path: The file.

    Returns:
        64 lowercase hex digits.
    """
    from trtops.keys.fingerprint import sha256_file

    return sha256_file(path)[0]


def open_s3_store(url: str, **overrides: Any) -> S3Store:
    """An :class:`S3Store` for ``s3://bucket/prefix?options``.

    Args:
        url: The remote URL (options: endpoint_url, region, profile, max_attempts,
            connect_timeout, read_timeout, jobs, addressing_style).
        overrides: Keyword arguments of :class:`S3Store` that win over URL options.

    Returns:
        The store (no request is made until it is used).
    """
    location = parse_s3_url(url)
    options = {**location.options, **{k: v for k, v in overrides.items() if v is not None}}
    return S3Store(location.bucket, location.prefix, **options)


__all__ = ["S3Location", "S3Store", "file_sha256", "open_s3_store", "parse_s3_url"]
