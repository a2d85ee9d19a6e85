"""`trtops gc`: remove cache entries nothing uses any more, and the leftovers of
interrupted writes.

What is kept depends on where gc runs (DVC's ``gc`` is the model: no scope, no gc):

- a local cache keeps what its refs name (builds and pulls write them), the manifests'
  current keys on this platform, and every key of the lock beside the manifests and of
  ``--keep-lock`` files;
- a remote cache is shared by every platform and every deployed release, so nothing here
  can tell what is unused: gc runs there only with an explicit scope, ``--keep-lock``
  (the locks of the branches and tags still deployed: exactly their keys are kept) and/or
  ``--older-than`` (only entries older than that go), and never keeps or drops anything
  because of the platform it happens to run on.

Every removal is reported with its engine name and platform, not a bare key.

A local gc also prunes ``prepared/`` (the models the preparation stage made): a prepared
model stays while an entry gc keeps, or an engine of the current manifests on this
platform, is built from it (:func:`trtops.prepare.runner.prepared_chain` of its key) or
while an apply or ``trtops prepare`` uses it (they pin it, :mod:`trtops.cache.pins`);
``--older-than`` spares the younger ones, ``--dry-run`` only lists.

Runs under the cache's ``publish`` lock, which :func:`trtops.cache.entries.publish_entry`
also takes, so an engine being published is never mistaken for garbage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARTIAL_GRACE_SECONDS = 3600.0


def current_engine_keys(paths: list[str], store: Any, platform: Any) -> list[Any]:
    """The :class:`~trtops.keys.engine_key.EngineKey` of the manifests' engines buildable on
    ``platform`` (hashing through the memo)."""
    from trtops.plan import load_specs, memo_for, spec_keys

    specs = load_specs(paths, check_models=False, cache_dir=getattr(store, "root", None))
    return list(spec_keys(specs, platform, memo_for(store)).keys.values())


def current_keys(paths: list[str], store: Any, platform: Any) -> set[str]:
    """Keys of the manifests' engines buildable on ``platform`` (hashing through the memo)."""
    return {key.key for key in current_engine_keys(paths, store, platform)}


def prepared_of(components: Iterable[Any]) -> set[str]:
    """The ``prepared/`` digests engines of these key components are built from."""
    from trtops.prepare.runner import prepared_chain

    digests: set[str] = set()
    for parts in components:
        if isinstance(parts, dict) and isinstance(parts.get("model_digest"), str):
            prepare = parts.get("prepare")
            digests.update(prepared_chain(parts["model_digest"], prepare if isinstance(prepare, dict) else None))
    return digests


@dataclass
class GcResult:
    """What gc removed (or, in a dry run, would remove)."""

    #: {"key", "size", "engine" (spec id or "?"), "platform" (signature or ""), "created_at"}
    removed: list[dict[str, Any]] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # keys of entries without meta.json
    leftovers: list[str] = field(default_factory=list)  # staging files of interrupted writers
    referenced: int = 0  # keys some ref points at
    current: int = 0  # keys of the current manifests
    locked: int = 0  # keys some lock names
    kept: int = 0  # distinct keys kept
    too_young: int = 0  # entries kept only because they are younger than --older-than
    #: prepared models removed: {"digest", "size", "source" (the model it was made from)}
    prepared_removed: list[dict[str, Any]] = field(default_factory=list)
    prepared_kept: int = 0  # prepared models some kept or current engine is built from
    prepared_in_use: int = 0  # prepared models kept because an apply or prepare pins them
    warning: str | None = None  # the current keys could not be computed
    cache: str = ""  # the URL of the cache gc ran in (set by run_gc)
    remote: bool = False  # gc ran in a remote (shared) cache

    @property
    def bytes(self) -> int:
        return sum(row["size"] for row in self.removed)


def describe_entry(key: str, meta: Any) -> dict[str, Any]:
    """The row gc reports for an entry: engine name, platform, size, age."""
    from trtops.cache.entries import entry_size
    from trtops.lockfile import LockPlatform

    if not isinstance(meta, dict):
        return {"key": key, "size": 0, "engine": "?", "platform": "", "created_at": None}
    platform = LockPlatform.from_meta(meta)
    return {"key": key, "size": entry_size(meta), "engine": str(meta.get("spec_id") or "?"),
            "platform": platform.signature if platform else "",
            "created_at": meta.get("created_at")}


def collect_garbage(store: Any, *, keep_current: set[str] | frozenset[str] = frozenset(),
                    keep_locked: set[str] | frozenset[str] = frozenset(),
                    use_refs: bool = True, older_than: float | None = None,
                    dry_run: bool = False,
                    grace_seconds: float = PARTIAL_GRACE_SECONDS,
                    on_remove: Callable[[dict[str, Any]], None] | None = None,
                    prune_prepared: bool = False,
                    keep_prepared: set[str] | frozenset[str] = frozenset()) -> GcResult:
    """Delete entries nothing keeps, partial entries and staging leftovers older than
    ``grace_seconds``, under the store's ``publish`` lock; with ``prune_prepared``, the
    prepared models no kept entry and nothing in ``keep_prepared`` is built from.

    Args:
        store: The cache.
        keep_current: Keys of the current manifests (see :func:`current_keys`).
        keep_locked: Keys the locks name.
        use_refs: Keep what the store's refs name (local caches; a remote's refs say
            nothing about what is deployed).
        older_than: Remove only entries created at least this many seconds ago (entries
            whose age is unknown are kept).
        dry_run: Only report what would be removed.
        grace_seconds: Partial entries and leftovers younger than this may belong to a
            writer still running, and are kept.
        on_remove: Called with each removed entry's row (the deletion log).
        prune_prepared: Also prune ``prepared/`` (a local cache's).
        keep_prepared: Prepared digests to keep besides those of the kept entries (the
            current manifests', see :func:`prepared_of`).

    Returns:
        A :class:`GcResult`.
    """
    from trtops.cache.entries import ref_keys
    from trtops.cache.layout import parse_time

    result = GcResult(current=len(keep_current), locked=len(keep_locked))
    # A dry run only reads, so it works on a read-only cache: no lock (an entry published
    # meanwhile may show up as partial in the report; nothing is deleted).
    with contextlib.nullcontext() if dry_run else store.lock("publish"):
        referenced: set[str] = set()
        if use_refs:
            for _, record in store.list_refs():
                referenced |= ref_keys(record)
        keep = referenced | set(keep_current) | set(keep_locked)
        result.referenced, result.kept = len(referenced), len(keep)
        now = time.time()
        for key in list(store.list_keys()):
            if key in keep:
                continue
            try:
                meta = store.read_meta(key)
            except Exception:  # noqa: BLE001 - a damaged entry is still garbage
                meta = None
            row = describe_entry(key, meta)
            if older_than is not None:
                created = parse_time(row["created_at"])
                if created is None or now - created < older_than:
                    result.too_young += 1
                    continue
            result.removed.append(row)
            if not dry_run:
                store.delete_entry(key)
            if on_remove is not None:
                on_remove(row)
        if hasattr(store, "list_entry_dirs"):
            for key in list(store.list_entry_dirs()):
                if store.has_entry(key):
                    continue
                try:
                    age = now - store.entry_dir(key).stat().st_mtime
                except FileNotFoundError:
                    continue
                if age >= grace_seconds:
                    result.partial.append(key)
                    if not dry_run:
                        store.delete_entry(key)
        if prune_prepared and hasattr(store, "root"):
            gone = {row["key"] for row in result.removed}
            kept_components = []
            for key in store.list_keys():
                if key not in gone:
                    with contextlib.suppress(Exception):  # a damaged meta.json keeps nothing
                        kept_components.append((store.read_meta(key) or {}).get("components"))
            _prune_prepared(Path(store.root), set(keep_prepared) | prepared_of(kept_components), result,
                            older_than=older_than, dry_run=dry_run, now=now)
        if hasattr(store, "clean_tmp") and not dry_run:
            result.leftovers = store.clean_tmp(grace_seconds)
    return result


def _prune_prepared(root: Path, keep: set[str], result: GcResult, *, older_than: float | None,
                    dry_run: bool, now: float) -> None:
    """Remove the prepared models of ``root`` that are not in ``keep``, not pinned and (with
    ``older_than``) old enough. A model goes by one rename out of ``prepared/`` while gc
    holds its pin exclusively, so an apply either finds all of it or makes it again."""
    from trtops.cache.layout import PREPARED_DIR
    from trtops.cache.pins import drop_pin, in_use, unpinned
    from trtops.names import SHA256_RE

    base = root / PREPARED_DIR
    try:
        found = sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return
    for digest in found:
        if not SHA256_RE.match(digest):
            continue  # not a prepared model (trtops writes no other names there)
        if digest in keep:
            result.prepared_kept += 1
            continue
        path = base / digest
        if older_than is not None:
            try:
                if now - path.stat().st_mtime < older_than:
                    result.too_young += 1
                    continue
            except FileNotFoundError:
                continue
        row = {"digest": digest, "size": _tree_size(path), "source": _prepared_source(path)}
        if dry_run:
            if in_use(root, digest):
                result.prepared_in_use += 1
            else:
                result.prepared_removed.append(row)
            continue
        with unpinned(root, digest) as free:
            if not free:
                result.prepared_in_use += 1
                continue
            trash = base / f".trash-{digest[:16]}.{os.getpid()}"
            try:
                os.rename(path, trash)
            except FileNotFoundError:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            drop_pin(root, digest)
        result.prepared_removed.append(row)


def _tree_size(path: Path) -> int:
    total = 0
    for item in path.rglob("*"):
        with contextlib.suppress(OSError):
            if item.is_file():
                total += item.stat().st_size
    return total


def _prepared_source(path: Path) -> str:
    """The model a prepared one was made from (its report says), or "?"."""
    from trtops.prepare.runner import MODEL_FILE, read_report

    report = read_report(path / MODEL_FILE)
    return report.source if report is not None and report.source else "?"


def gc(store: Any, paths: Sequence[str], platform: Any, *, explicit_paths: bool,
       dry_run: bool = False, locks: Sequence[Any] = (), older_than: float | None = None,
       on_remove: Callable[[dict[str, Any]], None] | None = None) -> GcResult:
    """``trtops gc`` on a local cache: keep what refs, the manifests' current keys and the
    locks name, remove the rest (only entries older than ``older_than`` when given), and the
    prepared models none of the kept or current engines is built from.

    Args:
        store: The cache.
        paths: Manifest paths whose current keys are kept (may be empty).
        platform: The platform the current keys are computed for.
        explicit_paths: The user named ``paths``: a manifest error then fails gc; for
            default paths it only narrows gc to referenced entries (with a warning).
        dry_run: Only report.
        locks: :class:`trtops.lockfile.Lock` objects whose keys are kept.
        older_than: Seconds; see :func:`collect_garbage`.
        on_remove: See :func:`collect_garbage`.

    Returns:
        A :class:`GcResult`.
    """
    from trtops.errors import TrtopsError

    keep_current: set[str] = set()
    keep_prepared: set[str] = set()
    warning = None
    if paths:
        try:
            current = current_engine_keys(list(paths), store, platform)
            keep_current = {key.key for key in current}
            keep_prepared = prepared_of(key.components for key in current)
        except TrtopsError as exc:
            if explicit_paths:
                raise
            warning = (f"could not compute the current keys of {', '.join(paths)} "
                       f"({exc.message}); keeping referenced and locked entries only")
    locked = set().union(*(lock.keys() for lock in locks)) if locks else set()
    result = collect_garbage(store, keep_current=keep_current, keep_locked=locked,
                             older_than=older_than, dry_run=dry_run, on_remove=on_remove,
                             prune_prepared=True, keep_prepared=keep_prepared)
    result.warning = warning
    return result


def remote_gc(store: Any, *, locks: Sequence[Any] = (), older_than: float | None = None,
              dry_run: bool = False,
              on_remove: Callable[[dict[str, Any]], None] | None = None) -> GcResult:
    """``trtops gc --remote``: remove what no given lock names (and, with ``older_than``,
    only what is older than that). Neither refs nor this machine's platform play a part.

    Args:
        store: The remote store.
        locks: The locks of every release still deployed: exactly their keys are kept.
        older_than: Seconds; see :func:`collect_garbage`.
        dry_run: Only report.
        on_remove: See :func:`collect_garbage`.

    Raises:
        InputError: without a scope (no lock and no age): refusing to guess what the
            fleet still uses.
    """
    from trtops.errors import InputError

    if not locks and older_than is None:
        raise InputError(
            f"refusing to collect garbage in the remote cache {store.url} without a scope: "
            "it holds the engines of every platform and every deployed release",
            hint="name what to keep: --keep-lock the trtops.lock of every branch and tag still "
                 "deployed (e.g. `git archive v1.2 manifests/trtops.lock | tar -x -C /tmp/v1.2`), "
                 "and/or --older-than 30d; --dry-run shows what would go")
    locked = set().union(*(lock.keys() for lock in locks)) if locks else set()
    return collect_garbage(store, keep_locked=locked, use_refs=False, older_than=older_than,
                           dry_run=dry_run, on_remove=on_remove)


@dataclass
class GcRequest:
    """One ``trtops gc`` run in plain values (the command converts its flags to this)."""

    cache_url: str  # the local cache (or an s3:// one: then gc runs as on a remote)
    remote_url: str | None = None  # --remote: gc runs in this cache instead
    paths: list[str] = field(default_factory=list)  # manifests whose current keys are kept
    explicit_paths: bool = False  # the user named ``paths`` (see :func:`gc`)
    platform: Callable[[], Any] | None = None  # gives the platform of the current keys
    keep_locks: list[str] = field(default_factory=list)  # lock paths whose keys are kept
    lockfile: str | None = None  # --lockfile: the lock of the manifests
    older_than: float | None = None  # seconds
    dry_run: bool = False


def run_gc(request: GcRequest, *,
           on_remove: Callable[[dict[str, Any], str], None] | None = None) -> GcResult:
    """Open the cache and collect its garbage: :func:`remote_gc` for a remote (``--remote``
    or an s3:// cache), else :func:`gc` keeping also the lock beside the manifests.

    Args:
        request: where and what to keep.
        on_remove: called with each removed entry's row and the cache's URL.
    """
    from trtops.cache import is_remote, open_store
    from trtops.lockfile import read_locks

    keep_locks = read_locks(request.keep_locks)
    url = request.remote_url or request.cache_url
    remote = bool(request.remote_url) or is_remote(url)
    store = open_store(url, write_for=None if request.dry_run else "gc")

    def removed(row: dict[str, Any]) -> None:
        if on_remove is not None:
            on_remove(row, store.url)

    if remote:
        result = remote_gc(store, locks=keep_locks, older_than=request.older_than,
                           dry_run=request.dry_run, on_remove=removed)
    else:
        paths = request.paths
        platform = request.platform() if paths and request.platform is not None else None
        result = gc(store, paths, platform, explicit_paths=request.explicit_paths,
                    dry_run=request.dry_run,
                    locks=keep_locks + _manifest_locks(paths, request.lockfile),
                    older_than=request.older_than, on_remove=removed)
    result.cache, result.remote = store.url, remote
    return result


def _manifest_locks(paths: Sequence[str], lockfile: str | None) -> list[Any]:
    """The lock beside the manifests (or ``lockfile``), when there is one, for a local gc."""
    from trtops.errors import InputError
    from trtops.lockfile import lock_path_for, read_lock

    if not paths and not lockfile:
        return []
    try:
        path = lock_path_for(paths, lockfile)
    except InputError:
        return []  # manifests of several directories and no --lockfile: no one lock
    lock = read_lock(path, missing_ok=not lockfile)
    return [lock] if lock.sections else []
