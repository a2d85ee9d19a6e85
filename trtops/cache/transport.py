"""The object-store transport under every cache backend: named byte objects, nothing more.

Names are relative ``/``-separated paths (``engines/ab/<key>/meta.json``). The entry logic
(:class:`trtops.cache.entry_store.ObjectEntries`, :mod:`trtops.cache.entries`, leases) sits
above this; a new backend implements these operations, passes
``tests/unit/cache/transport_contract.py``, and is an ObjectEntries over them.

Implementations: :class:`trtops.cache.dir_transport.DirTransport` (a directory: temp name
+ rename, fsynced) and :class:`trtops.cache.s3_transport.S3Transport` (S3: conditional
PUT ``If-None-Match: *`` / ``If-Match``, retries, resumable ranged downloads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class ObjectTransport(Protocol):
    """Byte objects by relative name. Absent objects are None/False, never an exception;
    failures of the medium raise :class:`~trtops.errors.CacheError` (``RemoteError`` for an
    unreachable remote)."""

    def get(self, name: str, limit: int | None = None) -> bytes | None:
        """The whole object, or None when absent; with ``limit``, at most ``limit + 1``
        bytes are read (so the caller sees that the object is larger and refuses it)."""

    def get_range(self, name: str, start: int, end: int) -> bytes | None:
        """Bytes ``start`` to ``end`` (exclusive) of an object, or None when absent."""

    def size(self, name: str) -> int | None:
        """The object's size in bytes, or None when absent."""

    def put(self, name: str, data: bytes) -> None:
        """Create or replace an object atomically (readers see the old or the new bytes)."""

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create an object only when none exists (create-only); False when one did."""

    def list(self, prefix: str) -> Iterator[str]:
        """Names of all objects under ``prefix`` (a name prefix, e.g. ``refs/``)."""

    def delete(self, name: str) -> None:
        """Remove an object; an absent one is fine."""

    def get_to_file(self, name: str, dest: Path) -> bool:
        """Stream an object into ``dest`` (written under a temporary name, then renamed);
        False when absent."""

    def download_file(self, name: str, dest: Path, *, expected_sha256: str | None = None,
                      progress: Callable[[int], None] | None = None, fsync: bool = True,
                      timings: dict[str, float] | None = None) -> bool:
        """Like :meth:`get_to_file`, and the content is hashed on the way: it is renamed
        onto ``dest`` only when its sha256 is ``expected_sha256`` (else a CacheError and
        nothing written). ``progress`` gets byte counts; ``timings`` gets seconds per phase."""

    # Conditional primitives for leases and locks (see trtops.cache.lease): an ETag is an
    # opaque version tag of one object's content.

    def create_object(self, name: str, data: bytes) -> str | None:
        """Create-only write. Returns the new ETag, or None when the object exists."""

    def read_object(self, name: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when absent."""

    def replace_object(self, name: str, data: bytes, if_match: str) -> str | None:
        """Replace only while the object still has ETag ``if_match``; None when it changed."""

    def delete_object(self, name: str, if_match: str | None = None) -> bool:
        """Delete (only while the ETag is ``if_match`` when given); False when it changed."""
