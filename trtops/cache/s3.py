"""S3-compatible remote engine cache: the entries, over :mod:`trtops.cache.s3_transport`.

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

Client, configuration and credentials: see :mod:`trtops.cache.s3_transport`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from trtops.cache import layout
from trtops.cache.s3_transport import (  # noqa: F401 - the public names of the S3 backend
    SHA_METADATA,
    Progress,
    S3Location,
    S3Transport,
    file_sha256,
    log,
    parse_s3_url,
)
from trtops.cache.store import META_FILE, PutResult
from trtops.errors import CacheError, RemoteError
from trtops.names import ENGINE_FILE


class S3Store(S3Transport):
    """An engine cache in an S3-compatible bucket. Implements :class:`EntryStore` over
    :class:`~trtops.cache.s3_transport.S3Transport` (whose arguments it takes)."""

    #: fetch_file accepts ``expected_sha256`` and ``progress`` (see :mod:`trtops.cache.transfer`).
    verified_fetch = True
    #: fetch_file also accepts ``timings`` (seconds per phase of each download).
    fetch_timings = True

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
