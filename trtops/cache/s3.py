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

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import trtops.cache.layout as layout
from trtops.cache.entries import file_digest
from trtops.cache.entry_store import ObjectEntries, Progress
from trtops.cache.s3_transport import (  # noqa: F401 - the public names of the S3 backend
    SHA_METADATA,
    S3Location,
    S3Transport,
    file_sha256,
    log,
    parse_s3_url,
    recorded_sha256,
)
from trtops.cache.store import META_FILE


class S3Store(ObjectEntries, S3Transport):
    """An engine cache in an S3-compatible bucket: the entry logic of
    :class:`~trtops.cache.entry_store.ObjectEntries` over the
    :class:`~trtops.cache.s3_transport.S3Transport` it is (whose arguments it takes)."""

    @property
    def objects(self) -> S3Transport:
        """The transport under the entries: this store itself."""
        return self

    # ----------------------------------------------------------------- S3 does it better

    def _entry_lock(self, key: str) -> Any:
        """A write lease (``leases/lock-entry-<key>.lock``, create-only, renewed while held,
        expiring if its writer dies); its ``lost`` says it expired during the upload."""
        from trtops.cache.lease import hold_lock

        return hold_lock(self, f"entry-{key}", timeout=self.lock_timeout, ttl=self.lease_ttl,
                         poll=0.05)

    def _upload_entry_files(self, key: str, files: Mapping[str, Path | bytes],
                            digests: dict[str, str], progress: Progress | None) -> None:
        """Upload in parallel (large files multipart), each with its x-amz-meta-sha256."""
        for name, source in files.items():
            if name not in digests:
                digests[name] = file_digest(source)[0]

        def upload(name: str) -> bool:
            return self.upload_file(self._entry_object(key, name), files[name], create_only=False,
                                    sha256=digests[name], progress=progress)

        if files:
            with ThreadPoolExecutor(max_workers=min(self.jobs, len(files)),
                                    thread_name_prefix="trtops-s3-put") as pool:
                list(pool.map(upload, sorted(files)))

    def _delete_entry_objects(self, key: str, names: list[str]) -> None:
        """meta.json first, then the rest in batches of 1000 (one request each)."""
        meta = [n for n in names if n.endswith("/" + META_FILE)]
        for name in meta:
            self._delete(name)
        rest = [n for n in names if n not in meta]
        for start in range(0, len(rest), 1000):
            batch = rest[start:start + 1000]
            self._call("delete", layout.entry_prefix(key), "delete_objects",
                       Delete={"Objects": [{"Key": self._name(n)} for n in batch], "Quiet": True})

    def _stored_sha256(self, key: str, name: str) -> str | None:
        # Recorded at upload; objects uploaded by other tools (aws s3 sync) are hashed.
        return self.file_sha256(key, name) or super()._stored_sha256(key, name)

    def file_sha256(self, key: str, name: str) -> str | None:
        """The recorded sha256 of an entry file (x-amz-meta-sha256), None if absent/unknown."""
        head = self._head(self._entry_object(key, name))
        return None if head is None else recorded_sha256(head)

    def list_refs(self) -> Iterator[tuple[str, dict]]:
        """All refs with their records, sorted by name (fetched in parallel; unreadable
        ones are skipped)."""
        refs = self.list_ref_names()
        if not refs:
            return
        with ThreadPoolExecutor(max_workers=min(self.jobs, len(refs))) as pool:
            for ref, record in zip(refs, pool.map(self._read_ref_or_none, refs)):
                if record is not None:
                    yield ref, record

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
