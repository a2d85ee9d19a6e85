"""Leases: expiring, exclusive claims stored in the cache itself.

A lease is a small JSON object ``leases/<name>`` created with a create-only write. While it
has not expired nobody else can take it; once expired, one contender takes it over with a
conditional write on the old version (S3 ``If-Match: <etag>``; under a file lock for a local
cache), so exactly one wins even when many try at once. The holder renews it the same way.

Uses:

- build leases (``apply --lock``): N shards of one GPU type share a remote; the shard that
  gets ``acquire_lease(remote, key, ...)`` builds the engine, the others wait for the entry
  (:func:`claim_build`). A shard that dies stops renewing and its lease expires.
- named locks across machines (:func:`hold_lock`, behind ``S3Store.lock``), e.g. to merge
  a shared timing cache.

Expiry uses the clocks of the machines involved (wall time, UTC); keep them in NTP sync
and choose a ttl far above their skew (minutes, not seconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trtops.cache.layout as layout
from trtops.cache.transport import ObjectTransport
from trtops.errors import CacheError

LEASES_DIR = "leases"


def _objects(store: Any) -> ObjectTransport:
    """The object transport under a store (``store.objects``), a transport itself, or a
    :class:`~trtops.cache.dir_transport.DirTransport` on a store's directory."""
    objects = getattr(store, "objects", None)
    if objects is not None:
        return objects
    if all(hasattr(store, name) for name in ("create_object", "read_object", "replace_object",
                                             "delete_object")):
        return store
    root = getattr(store, "root", None)
    if root is not None:
        from trtops.cache.dir_transport import DirTransport

        return DirTransport(Path(root))
    raise TypeError(f"{type(store).__name__} supports no leases (needs conditional writes "
                    "or a local root directory)")


def lease_object_name(name: str) -> str:
    """``leases/<safe name>.lock`` for any lease name (keys, lock names)."""
    return f"{LEASES_DIR}/{layout.lock_file_name(name)}"


def default_owner() -> str:
    """``host:pid``: who holds a lease, for messages."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Lease:
    """A held lease. ``token`` is unique per acquisition; ``etag`` is the version written."""

    store: Any
    name: str
    owner: str
    token: str
    ttl: float
    expires_at: float  # seconds since the epoch
    etag: str
    lost: bool = False  # set by LeaseKeeper when a renewal found it taken over

    @property
    def object_name(self) -> str:
        return lease_object_name(self.name)

    def remaining(self) -> float:
        """Seconds until it expires (negative once expired)."""
        return self.expires_at - time.time()

    def renew(self, ttl: float | None = None) -> bool:
        """Extend the lease; False when it was lost (expired and taken over)."""
        return renew_lease(self, ttl)

    def release(self) -> None:
        """Give the lease up (no-op when it was lost)."""
        release_lease(self)


def _body(name: str, owner: str, token: str, ttl: float) -> tuple[bytes, float]:
    now = time.time()
    expires = now + ttl
    record = {"name": name, "owner": owner, "token": token, "acquired_at": now,
              "expires_at": expires, "ttl": ttl}
    return json.dumps(record, sort_keys=True).encode(), expires


def read_lease(store: Any, name: str) -> dict | None:
    """The current lease record for ``name`` (owner, expires_at...), or None.

    Args:
        store: A cache store (S3Store or a local store with a ``root``).
        name: Lease name (an engine key or a lock name).

    Returns:
        The record (with ``expired``: bool added), or None when nobody holds it.
    """
    got = _objects(store).read_object(lease_object_name(name))
    if got is None:
        return None
    try:
        record = json.loads(got[0])
    except ValueError:
        record = {}
    record["expired"] = float(record.get("expires_at", 0)) <= time.time()
    return record


def acquire_lease(store: Any, key: str, owner: str, ttl: float) -> Lease | None:
    """Try once to take the lease ``key``.

    Args:
        store: The cache store holding the lease (usually the remote).
        key: Lease name: an engine key for build leases, or any name.
        owner: Who takes it (shown to others), e.g. ``host:pid`` or a shard name.
        ttl: Seconds until it expires unless renewed.

    Returns:
        The lease, or None when someone else holds an unexpired one (or won the race to
        take over an expired one).
    """
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    objects = _objects(store)
    relative = lease_object_name(key)
    token = uuid.uuid4().hex
    body, expires = _body(key, owner, token, ttl)
    for _ in range(3):  # the lease may vanish between our create and our read
        etag = objects.create_object(relative, body)
        if etag is not None:
            return Lease(store, key, owner, token, ttl, expires, etag)
        current = objects.read_object(relative)
        if current is None:
            continue
        data, old_etag = current
        try:
            record = json.loads(data)
            expired = float(record.get("expires_at", 0)) <= time.time()
        except (ValueError, TypeError, AttributeError):
            expired = True  # unreadable: nobody can prove they hold it
        if not expired:
            return None
        body, expires = _body(key, owner, token, ttl)
        etag = objects.replace_object(relative, body, old_etag)
        if etag is None:
            return None  # another contender took it over first
        return Lease(store, key, owner, token, ttl, expires, etag)
    return None


def renew_lease(lease: Lease, ttl: float | None = None) -> bool:
    """Extend a held lease by ``ttl`` (default: its own) from now.

    Returns:
        False when the lease was lost: it expired and someone else took it.
    """
    ttl = lease.ttl if ttl is None else ttl
    body, expires = _body(lease.name, lease.owner, lease.token, ttl)
    etag = _objects(lease.store).replace_object(lease.object_name, body, lease.etag)
    if etag is None:
        return False
    lease.etag, lease.expires_at, lease.ttl = etag, expires, ttl
    return True


def release_lease(lease: Lease) -> None:
    """Delete the lease object if it is still ours (conditional on its version)."""
    _objects(lease.store).delete_object(lease.object_name, if_match=lease.etag)


class LeaseKeeper:
    """Renews a lease from a background thread every ``ttl / 3`` while work goes on.

    Use as a context manager around the work; ``lost`` tells whether a renewal failed
    (the work should not be published under the lease's protection then)."""

    def __init__(self, lease: Lease, interval: float | None = None) -> None:
        self.lease = lease
        self.interval = interval if interval is not None else max(0.05, lease.ttl / 3)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trtops-lease", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.lease.renew():
                    self.lost = self.lease.lost = True
                    return
            except CacheError:
                # Remote briefly unreachable: try again next round; the ttl leaves room.
                if self.lease.remaining() <= 0:
                    self.lost = self.lease.lost = True
                    return

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def hold_lock(store: Any, name: str, *, timeout: float = 600.0, ttl: float = 60.0,
              poll: float = 0.2) -> Iterator[Lease]:
    """An exclusive named lock across machines, as a context manager.

    Args:
        store: The store that holds the lease object.
        name: Lock name.
        timeout: Seconds to wait for it.
        ttl: Lease lifetime; renewed every ttl/3 while held, so a crashed holder frees it
            after at most ``ttl`` seconds.
        poll: First wait between attempts (doubles up to 2 s).

    Yields:
        The lease.

    Raises:
        CacheError: when it could not be taken within ``timeout``.
    """
    lock_name = f"lock-{name}"
    owner = f"{default_owner()}:{threading.get_ident()}"
    deadline = time.monotonic() + timeout
    delay = poll
    while True:
        lease = acquire_lease(store, lock_name, owner, ttl)
        if lease is not None:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            holder = read_lease(store, lock_name) or {}
            raise CacheError(
                f"timed out after {timeout:g}s waiting for lock {name!r} on "
                f"{getattr(store, 'url', store)} (held by {holder.get('owner', 'unknown')})",
                hint=f"another trtops process holds it; a crashed holder's lock expires "
                     f"after {ttl:g}s",
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)
    try:
        with LeaseKeeper(lease):
            yield lease
    finally:
        with contextlib.suppress(CacheError):
            lease.release()


def claim_build(store: Any, key: str, owner: str, ttl: float, *, timeout: float = 3600.0,
                poll: float = 5.0) -> Lease | None:
    """Decide who builds an engine among shards sharing ``store``.

    Args:
        store: The shared (remote) store.
        key: Engine key.
        owner: This shard (host:pid, a shard name...).
        ttl: Build lease lifetime; wrap the build in :class:`LeaseKeeper` to renew it.
        timeout: Seconds to wait for another shard's build.
        poll: Seconds between checks while waiting.

    Returns:
        A lease: build now (and push, then release). None: the entry appeared in ``store``
        (fetch it instead of building).

    Raises:
        CacheError: when neither happened within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if store.has_entry(key):
            return None
        lease = acquire_lease(store, key, owner, ttl)
        if lease is not None:
            if store.has_entry(key):  # finished between our check and our claim
                lease.release()
                return None
            return lease
        left = deadline - time.monotonic()
        if left <= 0:
            holder = read_lease(store, key) or {}
            raise CacheError(
                f"waited {timeout:g}s for {holder.get('owner', 'another shard')} to build "
                f"{key[:12]}",
                hint="its lease is still being renewed; raise the timeout or build without --lock",
            )
        time.sleep(min(poll, left))


__all__ = ["LEASES_DIR", "Lease", "LeaseKeeper", "acquire_lease", "claim_build", "default_owner",
           "hold_lock", "lease_object_name", "read_lease", "release_lease", "renew_lease"]
