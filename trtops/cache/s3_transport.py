"""The S3 object transport (AWS S3, MinIO, Ceph RGW, R2, GCS interop, moto...): byte
objects under ``s3://bucket/prefix`` (see :class:`~trtops.cache.transport.ObjectTransport`),
conditional writes, streamed verified downloads and multipart uploads. The engine-cache
entries above it are :class:`trtops.cache.s3.S3Store`.

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

import base64
import contextlib
import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from trtops.cache.copier import MOST_COPIERS, Copiers, hand_over
from trtops.cache.file_sink import (
    Abandoned,
    BodyReader,
    FileSink,
    file_mode,
    in_order,
    lap,
    local_error,
    pwrite_all,
    read_buffer,
    start_writeback,
    write_local,
)
from trtops.cache.s3_direct import FALLBACK
from trtops.cache.s3_errors import (
    error_code,
    http_status,
    is_not_found,
    is_precondition_failed,
    is_transient,
)
from trtops.cache.s3_urls import (  # noqa: F401 - the S3 backend's public names
    S3Location,
    _redact_url,
    check_endpoint_url,
    parse_s3_url,
)
from trtops.errors import CacheError, EnvironmentMissing, RemoteError

log = logging.getLogger("trtops.cache.s3")  # one logger for the S3 backend

MiB = 1 << 20
MULTIPART_THRESHOLD = 64 * MiB  # above this: multipart uploads, parallel ranged downloads
PART_SIZE = 16 * MiB
DEFAULT_JOBS = 8
DEFAULT_MAX_ATTEMPTS = 4  # botocore standard mode: attempts per request, first included
DEFAULT_STREAM_RETRIES = 5  # resumes of one interrupted download
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 60.0
SHA_METADATA = "sha256"  # x-amz-meta-sha256

Progress = Callable[[int], None]


# --------------------------------------------------------------------------- configuration


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


def recorded_sha256(response: dict) -> str | None:
    """The sha256 recorded at upload (``x-amz-meta-sha256``) in a GET or HEAD response.
    Metadata names are case-insensitive in HTTP, and servers differ in the case they
    send (botocore keeps it), so any case is accepted."""
    for name, value in (response.get("Metadata") or {}).items():
        if name.lower() == SHA_METADATA:
            return value
    return None


# --------------------------------------------------------------------------- the transport


class S3Transport:
    """Byte objects in an S3-compatible bucket under a prefix (an
    :class:`~trtops.cache.transport.ObjectTransport`).

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
        direct_gets: Make whole-object GETs without botocore's request pipeline where
            they can be made the same way (:mod:`trtops.cache.s3_direct`); False: every
            request through botocore.
        copiers: Most copier processes receiving, hashing and writing large bodies
            beside this one (:mod:`trtops.cache.copier`; None: :data:`MOST_COPIERS`, one
            per download in flight; 0: none, every body is read in this process).
    """

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
        direct_gets: bool = True,
        copiers: int | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = (endpoint_url or os.environ.get("TRTOPS_S3_ENDPOINT_URL")
                             or os.environ.get("AWS_ENDPOINT_URL_S3")
                             or os.environ.get("AWS_ENDPOINT_URL") or None)
        if self.endpoint_url:
            check_endpoint_url(self.endpoint_url)
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
        self.direct_gets = bool(direct_gets)
        self._client_lock = threading.Lock()
        self._client: Any = None
        self._direct: Any = None  # DirectGets, or None where reads go through botocore
        self.copiers = Copiers(MOST_COPIERS if copiers is None else copiers)

    # ----------------------------------------------------------------- plumbing

    @property
    def endpoint(self) -> str:
        """The endpoint for messages (no credentials, no query)."""
        return _redact_url(self.endpoint_url) if self.endpoint_url else "AWS S3"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, endpoint={self.endpoint!r})"

    @property
    def client(self) -> Any:
        """The shared boto3 S3 client, created on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    @property
    def direct(self) -> Any:
        """The :class:`~trtops.cache.s3_direct.DirectGets` of this transport, or None when
        its reads go through botocore (turned off, or not possible the same way)."""
        self.client  # noqa: B018 - made with the client, on its first use
        return self._direct

    def _make_client(self) -> Any:
        boto3, botocore = _boto()
        from botocore.config import Config

        core = botocore.session.get_session()  # what boto3.Session would make itself
        model = core.get_service_model("s3")
        if "IfNoneMatch" not in model.operation_model("PutObject").input_shape.members:
            raise EnvironmentMissing(
                f"boto3/botocore {botocore.__version__} cannot make create-only writes",
                hint="pip install -U 'boto3>=1.35' (If-None-Match on PutObject)",
            )
        # Timestamps (LastModified of every listed object) stay strings: trtops reads none,
        # and parsing them with dateutil was two thirds of a listing's client CPU
        # (160 objects: 12 -> 4 ms, benchmarks/RESULTS.md session 5).
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
        try:
            session = boto3.session.Session(botocore_session=core, profile_name=self.profile)
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
        client = session.client("s3", endpoint_url=self.endpoint_url, region_name=region,
                                config=Config(**settings))
        if self.direct_gets:
            self._direct = self._make_direct(core, client)
        return client

    def _make_direct(self, core: Any, client: Any) -> Any:
        """Direct GETs sent as ``client`` would send them: its credentials object (the
        session's, shared and refreshed by botocore) and the CA bundle it verifies with."""
        from botocore.httpsession import get_cert_path

        from trtops.cache.s3_direct import DirectGets

        try:
            credentials = core.get_credentials()
        except Exception:  # noqa: BLE001 - botocore's own requests report it
            return None
        return DirectGets.for_client(
            client, credentials, connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            # botocore's order: ca_bundle (AWS_CA_BUNDLE, profile), REQUESTS_CA_BUNDLE, certifi.
            ca_bundle=get_cert_path(core.get_config_variable("ca_bundle")
                                    or os.environ.get("REQUESTS_CA_BUNDLE") or True))

    def _name(self, relative: str) -> str:
        return self._root + relative

    def prepare_downloads(self, count: int) -> Any:
        """About ``count`` downloads will run at once: start their copier processes now,
        where bodies can go to them (a plain-http endpoint; see :mod:`trtops.cache.copier`).
        Returns the thread starting them, or None."""
        if (self.endpoint_url or "").lower().startswith("http://") and self.direct_gets:
            return self.copiers.warm(count)
        return None

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
            code = error_code(exc)
            if code == "NoSuchBucket":
                return RemoteError(f"bucket {self.bucket!r} does not exist at {self.endpoint}",
                                   hint=f"create it (aws s3 mb s3://{self.bucket}) or fix the URL")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                        "ExpiredToken", "InvalidToken", "AllAccessDisabled") or http_status(exc) == 403:
                return RemoteError(
                    f"access denied to {target} while trying to {action} {what}".rstrip(),
                    hint="check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the "
                         "bucket policy",
                )
            from trtops.redact import redact

            message = redact(exc.response.get("Error", {}).get("Message", ""))
            return RemoteError(
                f"S3 refused to {action} {what} at {target}: {code or http_status(exc)} {message}".strip(),
                hint="retry later; if it persists check the server logs",
            )
        if is_transient(exc):
            return RemoteError(
                f"cannot reach the remote cache {target} (while trying to "
                f"{' '.join(filter(None, (action, what)))}): {type(exc).__name__}",
                hint="check that the server is up and the endpoint is right "
                     "(?endpoint_url= in the URL, TRTOPS_S3_ENDPOINT_URL or AWS_ENDPOINT_URL); "
                     f"requests were retried {self.max_attempts} times",
            )
        from trtops.redact import redact

        return RemoteError(f"S3 request to {action} {what} at {target} failed: {redact(exc)}",
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
                    is_not_found(exc) or is_precondition_failed(exc)):
                raise
            raise self._translate(exc, action, what) from exc

    # ----------------------------------------------------------------- objects

    def _head(self, relative: str) -> dict | None:
        _, botocore = _boto()
        try:
            return self._call("read", relative, "head_object", Key=self._name(relative))
        except botocore.exceptions.ClientError as exc:
            if is_not_found(exc):
                return None
            raise self._translate(exc, "read", relative) from exc

    def _get_bytes(self, relative: str, limit: int | None = None) -> tuple[bytes, dict] | None:
        """Whole small object and its response (ETag, Metadata); None when absent. With
        ``limit``, at most ``limit + 1`` bytes are read and the rest of the body dropped."""
        _, botocore = _boto()
        direct = self.direct
        if direct is not None:
            got = direct.read(self._name(relative), limit)
            if got is not FALLBACK:
                return got
        for attempt in range(self.stream_retries + 1):
            try:
                response = self._call("read", relative, "get_object", Key=self._name(relative))
                if limit is None:
                    return response["Body"].read(), response
                with contextlib.closing(response["Body"]) as body:
                    return body.read(limit + 1), response
            except botocore.exceptions.ClientError as exc:
                if is_not_found(exc):
                    return None
                raise self._translate(exc, "read", relative) from exc
            except CacheError:
                raise
            except Exception as exc:  # noqa: BLE001 - body read broke: retry whole object
                if not is_transient(exc) or attempt == self.stream_retries:
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
            # The server checks the body against it: a PUT cut off mid-body (a killed
            # client) is refused instead of stored short, so meta.json is whole or absent.
            "ContentMD5": base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),
        }
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        try:
            return self._call("write", relative, "put_object", **kwargs).get("ETag", "")
        except botocore.exceptions.ClientError as exc:
            if is_precondition_failed(exc) or (if_match is not None and is_not_found(exc)):
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
            if is_not_found(exc):
                return if_match is None
            if is_precondition_failed(exc):
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
                    if create_only and is_precondition_failed(exc):
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
                if create_only and is_precondition_failed(exc):
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
        clock = lap(timings, "request", clock)
        if opened is None:
            return False
        body, response = opened
        size = int(response.get("ContentLength", 0))
        etag = response.get("ETag")
        expected = expected_sha256 or recorded_sha256(response)
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part",
                                            dir=dest.parent)
        except BaseException as exc:
            body.close()
            if isinstance(exc, OSError):
                raise local_error(exc, relative) from exc
            raise
        tmp = Path(tmp_name)
        try:
            try:
                # mkstemp makes 0600 files; a cache shared by several users needs what
                # open() would have made.
                with contextlib.suppress(OSError):
                    os.fchmod(fd, file_mode())
                if size > self.multipart_threshold and self.jobs > 1:
                    body.close()  # large: parallel ranges instead of this one stream
                    digest = self._download_ranged(relative, fd, size, etag, progress,
                                                   writeback=fsync)
                else:
                    digest = self._download_stream(relative, fd, size, etag, progress, body,
                                                   writeback=fsync)
                clock = lap(timings, "body", clock)
                if fsync:
                    write_local(os.fsync, fd, relative=relative)
                    lap(timings, "fsync", clock)
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
        direct = self.direct
        if direct is not None:
            opened = direct.open(kwargs["Key"], byte_range=kwargs.get("Range"),
                                 if_match=etag)
            if opened is not None and opened is not FALLBACK:
                return opened[0]
        try:
            # Raw call: the caller classifies failures and resumes after transient ones.
            return self.client.get_object(Bucket=self.bucket, **kwargs)["Body"]
        except botocore.exceptions.ClientError as exc:
            if is_not_found(exc) or is_precondition_failed(exc):
                raise CacheError(f"{self.url}/{relative} disappeared or changed during download",
                                 hint="retry; another writer replaced or deleted it") from exc
            if is_transient(exc):
                raise
            raise self._translate(exc, "download", relative) from exc

    def _open(self, relative: str) -> tuple[Any, dict] | None:
        """GET an object: (streaming body, response), or None when it does not exist.
        Transient failures are retried (after botocore's own attempts) with backoff."""
        _, botocore = _boto()
        direct = self.direct
        if direct is not None:
            opened = direct.open(self._name(relative))
            if opened is not FALLBACK:
                return opened
        for attempt in range(self.stream_retries + 1):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._name(relative))
                return response["Body"], response
            except botocore.exceptions.ClientError as exc:
                if is_not_found(exc):
                    return None
                if not is_transient(exc) or attempt == self.stream_retries:
                    raise self._translate(exc, "download", relative) from exc
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_transient(exc) or attempt == self.stream_retries:
                    raise self._translate(exc, "download", relative) from exc
            self._backoff(attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def _download_stream(self, relative: str, fd: int, size: int, etag: str | None,
                         progress: Progress | None, body: Any = None, *,
                         writeback: bool = False) -> str:
        """One body (resumed with ranged GETs after interruptions) into ``fd`` from offset 0;
        returns its sha256."""
        sink = FileSink(fd, relative, writeback=writeback)
        received = 0
        failures = 0
        if body is not None:  # a copier process receives it where it can (cache/copier.py)
            handed = hand_over(self.copiers, body, sink, size, read_timeout=self.read_timeout,
                               progress=progress)
            if handed is not None:
                body = None
                if handed.sha256 is not None:
                    return handed.sha256
                received, progress = handed.received, handed.progress
                failures = self._resume_or_raise(handed.error, relative, failures, received)
        buffer = read_buffer()
        while True:
            try:
                if body is None:
                    body = self._get_range(relative, received, None, etag)
                reader = BodyReader(body)
                try:
                    while True:
                        count = reader.readinto(buffer)
                        if not count:
                            break
                        if received + count > size:
                            raise ConnectionError(f"long read: more than {size} bytes")
                        sink.write(buffer[:count])
                        received += count
                        if progress:
                            progress(count)
                finally:
                    reader.close()
                    body = None
                if received != size:
                    raise ConnectionError(f"short read: {received} of {size} bytes")
                return sink.finish()
            except CacheError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified by _resume_or_raise
                failures = self._resume_or_raise(exc, relative, failures, received)

    def _resume_or_raise(self, exc: Exception, relative: str, failures: int, at: int) -> int:
        """The one rule for an interrupted download (a whole body or one range): raise the
        translated error when ``exc`` is not transient or ``stream_retries`` resumes are
        spent; else back off and return the failures so far (with this one), and the
        caller resumes with a ranged GET from the object's byte ``at``."""
        if not is_transient(exc) or failures >= self.stream_retries:
            raise self._translate(exc, "download", relative) from exc
        failures += 1
        log.debug("download of %s interrupted (%s); resuming at byte %d",
                  relative, type(exc).__name__, at)
        self._backoff(failures)
        return failures

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
                    raise Abandoned(relative)
                try:
                    reader = BodyReader(self._get_range(relative, start + received, end, etag))
                    try:
                        while received < length:
                            # Straight into the part's buffer: no chunk objects, no copy.
                            count = reader.readinto(view[received:])
                            if not count:
                                break
                            received += count
                            if progress:
                                progress(count)
                        if reader.readinto(bytearray(1)):
                            raise ConnectionError(f"long range read: more than {length}")
                    finally:
                        reader.close()
                    if received != length:
                        raise ConnectionError(f"short range read: {received} of {length}")
                    return buffer
                except CacheError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified by _resume_or_raise
                    failures = self._resume_or_raise(exc, relative, failures, start + received)
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
            pwrite_all(fd, data, start, relative)
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
                    digest.update(in_order(pending.pop(index), pending.values()))
            except BaseException:
                stop.set()
                for future in pending.values():
                    future.cancel()
                raise
        return digest.hexdigest()

    # ----------------------------------------------------------------- the transport API

    def get(self, name: str, limit: int | None = None) -> bytes | None:
        """The whole object (at most ``limit + 1`` bytes), or None when absent."""
        got = self._get_bytes(name, limit)
        return None if got is None else got[0]

    def get_range(self, name: str, start: int, end: int) -> bytes | None:
        """Bytes ``start`` to ``end`` (exclusive), or None when absent."""
        if end <= start:
            return b"" if self._head(name) is not None else None
        _, botocore = _boto()
        try:
            response = self._call("read", name, "get_object", Key=self._name(name),
                                  Range=f"bytes={start}-{end - 1}")
            return response["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if is_not_found(exc):
                return None
            raise self._translate(exc, "read", name) from exc

    def size(self, name: str) -> int | None:
        """The object's size, or None when absent."""
        head = self._head(name)
        return None if head is None else int(head.get("ContentLength", 0))

    def put(self, name: str, data: bytes) -> None:
        """Create or replace (a PUT replaces an object atomically)."""
        self._put_bytes(name, bytes(data))

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create-only PUT (``If-None-Match: *``); False when the object exists."""
        return self._put_bytes(name, bytes(data), create_only=True) is not None

    def list(self, prefix: str) -> Iterator[str]:
        """Names of all objects under ``prefix``."""
        for item in self._list(prefix):
            yield item["Key"]

    def delete(self, name: str) -> None:
        """Remove an object (absent is fine)."""
        self._delete(name)

    def get_to_file(self, name: str, dest: Path) -> bool:
        """Stream an object into ``dest`` (hashed on the way, renamed into place); False
        when absent."""
        return self.download_file(name, Path(dest))


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed.

    Args:
        path: The file.

    Returns:
        64 lowercase hex digits.
    """
    from trtops.keys.memo import sha256_file

    return sha256_file(path)[0]
