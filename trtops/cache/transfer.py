"""Moving one entry between two stores: push (create-only, accepted entries only, the
local files checked against their recorded sha256 first) and fetch (every file verified
against meta.json in a staging directory, then published atomically), plus timing caches.

Works with any two :class:`~trtops.cache.store.EntryStore` objects (a remote may also be a
shared directory). The verbs that move many entries are :mod:`trtops.ops.push` and
:mod:`trtops.ops.pull`. Guarantees:

- only *accepted* entries are pushed (rejected and unverified ones never are), and the
  local engine is checked against its recorded sha256 first, so corruption does not spread;
- remote writes are create-only: of racing pushers exactly one creates the entry and the
  others learn whether its engine is identical to theirs;
- every fetched file is verified against the sha256 in ``meta.json`` before it is renamed
  into place, and the local entry appears atomically (or not at all).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trtops.cache.layout as layout
from trtops.cache.entries import (
    check_meta,
    entry_file_names,
    expected_digests,
    merge_timing_cache_into,
    parse_perf,
    state_of_accuracy,
)
from trtops.cache.store import (
    ACCURACY_FILE,
    ENTRY_FILES,
    META_FILE,
    OPTIONAL_FILES,
    PERF_FILE,
    PutResult,
)
from trtops.errors import CacheError
from trtops.names import ENGINE_FILE

log = logging.getLogger("trtops.cache.transfer")

Progress = Callable[[int], None]


def _sha256(path: Path) -> str:
    from trtops.keys.memo import sha256_file

    return sha256_file(path)[0]


def _local_entry_files(local: Any, key: str, workdir: Path) -> dict[str, Path]:
    """Paths of an entry's files: in place for a local cache, else copied to ``workdir``."""
    entry_dir = getattr(local, "entry_dir", None)
    list_files = getattr(local, "list_files", None)
    if entry_dir is not None and list_files is not None:
        base = Path(entry_dir(key))
        return {name: base / name for name in list_files(key) if name != META_FILE}
    out = {}
    for name in ENTRY_FILES:
        if name == META_FILE:
            continue
        if local.fetch_file(key, name, workdir / name):
            out[name] = workdir / name
    return out


def _fetch_one(remote: Any, key: str, name: str, dest: Path, expected: str | None,
               progress: Progress | None, fsync: bool,
               timings: dict[str, float] | None = None) -> bool:
    """Fetch one file, verified against ``expected`` before it is renamed into place;
    True when present."""
    return remote.fetch_file(key, name, dest, expected_sha256=expected, progress=progress,
                             fsync=fsync, timings=timings)


def _staging_dir(local: Any, label: str) -> Path:
    """A temporary directory on the local cache's filesystem when it has one."""
    base = getattr(local, "tmp_dir", None)
    if base is not None:
        Path(base).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{label}.", dir=base))
    return Path(tempfile.mkdtemp(prefix=f"trtops-{label}."))



# --------------------------------------------------------------------------- push


def check_remote(remote: Any) -> None:
    """One request to the remote before any per-entry work (the first page of its entry
    listing): a missing bucket, refused credentials or an unreachable endpoint is then one
    error, not one per engine.

    Raises:
        RemoteError: the remote cannot be used.
    """
    next(iter(remote.list_keys()), None)


def push_entry(local: Any, remote: Any, key: str, *, progress: Progress | None = None,
               states: Sequence[str] = ("accepted",)) -> PutResult:
    """Publish one local entry to the remote, create-only.

    Args:
        local: The local store holding the entry.
        remote: The remote store.
        key: Engine key.
        progress: Byte-count callback for uploads.
        states: Entry states that may be pushed (default only 'accepted'; 'rejected' is
            never pushed whatever is asked).

    Returns:
        PutResult: ``created`` when this call created the remote entry; otherwise
        ``identical`` says whether the remote engine has the same sha256 (a different one
        comes from a non-deterministic rebuild elsewhere; the remote one is kept).

    Raises:
        CacheError: no such local entry, not accepted, or the local files do not match
            their recorded sha256.
    """
    layout.check_key(key)
    meta = local.read_meta(key)
    if meta is None:
        raise CacheError(f"no complete entry {key[:12]} in {local.url}",
                         hint="list entries with `trtops status` or build it with `trtops apply`")
    state = state_of_accuracy(local.read_file(key, ACCURACY_FILE), key)
    if state == "rejected" or state not in states:
        raise CacheError(
            f"entry {key[:12]} ({meta.get('spec_id', '?')}) is {state}; only accepted entries "
            "are pushed",
            hint="run `trtops verify` for it" if state == "unverified" else
                 "rejected engines failed their accuracy check and stay local",
        )
    if remote.has_entry(key):
        return PutResult(created=False, identical=_remote_identical(remote, key, meta))
    workdir = Path(tempfile.mkdtemp(prefix="trtops-push."))
    try:
        files = _local_entry_files(local, key, workdir)
        if ENGINE_FILE not in files:
            raise CacheError(f"entry {key[:12]} in {local.url} has no engine.plan",
                             hint="run `trtops cache verify --delete` and rebuild it")
        expected = expected_digests(meta)
        digests: dict[str, str] = {}
        for name, path in files.items():
            if name in expected:
                digest = _sha256(path)
                if digest != expected[name]:
                    raise CacheError(
                        f"{name} of {key[:12]} in {local.url} does not match its recorded sha256",
                        hint="the local entry is corrupt; `trtops cache verify --delete`, then rebuild",
                    )
                digests[name] = digest
        result = remote.put_entry(key, files, meta, progress=progress, digests=digests)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not result.created and not result.identical:
        log.warning("%s: the remote already has a different engine for %s (%s); kept the "
                    "remote one", remote.url, key[:12], meta.get("spec_id", "?"))
    return result


def _remote_identical(remote: Any, key: str, meta: Mapping[str, Any]) -> bool:
    theirs = remote.read_meta(key) or {}
    return bool(meta.get("engine_sha256")) and theirs.get("engine_sha256") == meta.get("engine_sha256")



# --------------------------------------------------------------------------- fetch


class PullTimings:
    """Where the time of a pull went, for benchmarks and diagnostics (thread-safe).

    ``seconds`` sums thread-seconds per phase over all workers (several run at once, so
    they add up to more than the wall time): ``list`` and ``metadata`` (selection: the
    listing, then meta.json and accuracy.json reads), ``request`` (until the response
    headers of each file), ``body`` (receiving, hashing and writing), ``fsync`` (of each
    downloaded file), ``copy`` (stores without timings of their own), ``publish`` (the
    local store making an entry of the staged files: meta.json, directory fsyncs, lock,
    rename). ``walls`` holds wall-clock spans: ``select``, ``transfer`` (from the start of
    :func:`pull_entries` until the last file of the last entry was downloaded) and
    ``publish_tail`` (from then until :func:`pull_entries` returned).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.walls: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        """Add thread-seconds to a phase."""
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def add_all(self, timings: Mapping[str, float]) -> None:
        """Add several phases at once (a store's per-file timings)."""
        with self._lock:
            for phase, seconds in timings.items():
                self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def wall(self, name: str, seconds: float) -> None:
        """Record a wall-clock span."""
        with self._lock:
            self.walls[name] = seconds


@dataclass
class Staged:
    """An entry's files downloaded and verified in a staging directory, not yet visible."""

    key: str
    meta: dict
    directory: Path
    files: dict[str, Path]
    adopt: bool  # the directory itself becomes the entry (LocalStore.adopt_entry)
    move: bool  # else: put_entry(move=True) may take the files over
    durable: bool = True  # False: nothing fsynced (the entry is in an unsynced journal)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)  # nothing left once adopted

    def make_durable(self) -> None:
        """fsync the staged files, for an entry staged without (``durable`` False) that no
        journal names after all: a pull's download started before it knew whether its
        journal could be written (:mod:`trtops.ops.pull_downloads`).

        Raises:
            CacheError: an fsync failed (the caller discards the staging).
        """
        from trtops.cache.local import write_error

        for path in self.files.values():
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise write_error(exc, f"{path.name} of a pulled entry") from exc
        self.durable = True


def _write_staged(path: Path, data: bytes, fsync: bool) -> None:
    from trtops.cache.local import write_bytes, write_error

    try:
        write_bytes(path, data, fsync=fsync)
    except OSError as exc:
        raise write_error(exc, f"{path.name} of a pulled entry") from exc


def stage_entry(remote: Any, local: Any, key: str, meta: dict, *,
                 progress: Progress | None = None, accuracy: bytes | None = None,
                 perf: bytes | None = None, timings: PullTimings | None = None,
                 durable: bool = True, judged: bool = False,
                 with_logs: bool = True) -> Staged:
    """Download and verify every file of an entry into a staging directory of the local
    store (fsynced when the store adopts the files as they are, unless ``durable`` is
    False: the entry is then in an unsynced journal, see :mod:`trtops.cache.journal`).

    The engine streams in this thread while the small files are fetched beside it, so
    they cost no round trips after it. ``accuracy`` (accuracy.json as read when the entry
    was selected) is written instead of fetched again, and so is ``perf`` (perf.json);
    a perf.json fetched here is checked like one read at selection. ``judged``: both were
    read (or seen absent in the listing) when the entry was selected, so a None ``perf``
    means the entry had none and it is not asked for again (one request less per entry).
    Without ``with_logs`` the :data:`~trtops.cache.store.OPTIONAL_FILES` (build.log) are
    not fetched; with it, one the remote lacks is no error (an entry pushed from a pulled
    copy has none), and one it has is verified like any other file.
    """
    expected = expected_digests(meta)
    new_staging = getattr(local, "new_staging", None)
    adopt = callable(new_staging) and callable(getattr(local, "adopt_entry", None))
    move = not adopt
    directory = (Path(new_staging(f"fetch-{key[:16]}")) if adopt
                 else _staging_dir(local, f"fetch-{key[:16]}"))
    # Files the store takes over by renaming must be on disk before they become visible;
    # a store that copies them fsyncs its own copy.
    fsync = (adopt or move) and durable
    staged = Staged(key, meta, directory, {}, adopt, move, durable)
    try:
        known = {ACCURACY_FILE: accuracy, PERF_FILE: perf}  # as read at selection

        def get(name: str) -> bool:
            target = directory / name
            given = known.get(name)
            if given is not None:
                _write_staged(target, given, fsync)
                if progress:
                    progress(len(given))
                return True
            started = time.perf_counter()
            file_timings: dict[str, float] = {}
            found = _fetch_one(remote, key, name, target, expected.get(name), progress,
                               fsync=fsync, timings=file_timings)
            if timings is not None:
                if file_timings:
                    timings.add_all(file_timings)
                else:
                    timings.add("copy", time.perf_counter() - started)
            return found

        names = entry_file_names(meta, with_logs=with_logs)  # the engine first
        if judged and perf is None:
            names.remove(PERF_FILE)
        found: dict[str, bool] = {}
        # Files to request go beside the engine; those read at selection are written after
        # it in this thread (no thread to start, which waits for the GIL, before the GET).
        requested = [name for name in names[1:] if known.get(name) is None]
        if requested:
            with ThreadPoolExecutor(max_workers=min(4, len(requested)),
                                    thread_name_prefix="trtops-pull-small") as helpers:
                others = {name: helpers.submit(get, name) for name in requested}
                found[names[0]] = get(names[0])
                for name, future in others.items():
                    found[name] = future.result()
        elif names:
            found[names[0]] = get(names[0])
        for name in names[1:]:
            if name not in found:
                found[name] = get(name)
        if found.get(PERF_FILE) and perf is None:
            parse_perf((directory / PERF_FILE).read_bytes(), key)  # CacheError: damaged
        for name in names:
            if found[name]:
                staged.files[name] = directory / name
            elif name == ENGINE_FILE or (name in expected and name not in OPTIONAL_FILES):
                raise CacheError(f"{name} of {key[:12]} is missing in {remote.url}",
                                 hint="the remote entry is incomplete; push it again")
    except BaseException:
        staged.discard()
        raise
    return staged


def publish_staged(local: Any, staged: Staged, timings: PullTimings | None = None) -> None:
    """Make the local entry of staged files (create-only, atomic); consumes the staging."""
    started = time.perf_counter()
    try:
        if staged.adopt:
            local.adopt_entry(staged.key, staged.directory, dict(staged.meta),
                              durable=staged.durable)
        elif staged.move:
            local.put_entry(staged.key, staged.files, dict(staged.meta), move=True)
        else:
            local.put_entry(staged.key, staged.files, dict(staged.meta))
    finally:
        staged.discard()
        if timings is not None:
            timings.add("publish", time.perf_counter() - started)


def fetch_entry(remote: Any, local: Any, key: str, *, progress: Progress | None = None,
                meta: Mapping[str, Any] | None = None, accuracy: bytes | None = None,
                perf: bytes | None = None, timings: PullTimings | None = None,
                with_logs: bool = True) -> bool:
    """Copy one entry from the remote into the local cache, verified and atomic.

    Every file is checked against the sha256 in meta.json before the entry becomes
    visible: the files are downloaded (and fsynced) into a staging directory in the local
    cache's tmp/, then the local store writes meta.json last and renames the directory
    into place (create-only), so an interrupted fetch leaves no entry and no partial file
    behind.

    Args:
        remote: The remote store.
        local: The local store.
        key: Engine key.
        progress: Byte-count callback for downloads.
        meta: The remote entry's meta.json when already read (saves a request).
        accuracy: The remote entry's accuracy.json when already read (saves a request;
            :func:`select_for_pull` keeps the copy it judged the entry by).
        timings: Collects where the time went (see :class:`PullTimings`).
        with_logs: Also fetch build.log (default: a full copy, as ``apply --remote``
            wants on the build side; ``trtops pull`` leaves it unless ``--with-logs``).

    Returns:
        True when the entry is now in the local cache (fetched or already there); False
        when the remote has no such entry.

    Raises:
        CacheError: a digest mismatch (nothing is written).
        RemoteError: the remote failed or became unreachable (nothing is written).
    """
    layout.check_key(key)
    if local.has_entry(key):
        return True
    if meta is None:
        meta = remote.read_meta(key)
        if meta is None:
            return False
    check_meta(remote, key, meta)
    staged = stage_entry(remote, local, key, dict(meta), progress=progress,
                          accuracy=accuracy, perf=perf, timings=timings, with_logs=with_logs)
    publish_staged(local, staged, timings)
    return True



# --------------------------------------------------------------------------- timing caches


def fetch_timing_cache(remote: Any, local: Any, tensorrt: str, gpu_signature: str,
                       merge: Callable[[bytes, bytes], bytes] | None = None) -> bool:
    """Bring the remote timing cache into the local cache.

    Args:
        remote: The remote store.
        local: The local store.
        tensorrt: Full TensorRT version.
        gpu_signature: GPU signature (see :func:`trtops.keys.engine_key.gpu_signature`).
        merge: ``merge(local_bytes, remote_bytes) -> bytes`` (the builder's TensorRT-based
            combine); without it an existing local cache is kept as is.

    Returns:
        True when the local timing cache changed.
    """
    data = remote.read_timing_cache(tensorrt, gpu_signature)
    return merge_timing_cache_into(local, tensorrt, gpu_signature, data, merge)


def push_timing_cache(local: Any, remote: Any, tensorrt: str, gpu_signature: str,
                      merge: Callable[[bytes, bytes], bytes] | None = None, *,
                      lock_timeout: float = 120.0) -> bool:
    """Publish the local timing cache, merged with the remote one under the remote's lock.

    Args:
        local: The local store.
        remote: The remote store.
        tensorrt: Full TensorRT version.
        gpu_signature: GPU signature.
        merge: ``merge(remote_bytes, local_bytes) -> bytes``; without it the local cache is
            uploaded only when the remote has none (never overwriting others' work).
        lock_timeout: Seconds to wait for the remote lock.

    Returns:
        True when the remote timing cache changed.
    """
    data = local.read_timing_cache(tensorrt, gpu_signature)
    return merge_timing_cache_into(remote, tensorrt, gpu_signature, data, merge,
                                   lock_timeout=lock_timeout)

