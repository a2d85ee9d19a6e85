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

Runs under the cache's ``publish`` lock, which :func:`trtops.cache.entries.publish_entry`
also takes, so an engine being published is never mistaken for garbage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PARTIAL_GRACE_SECONDS = 3600.0


def current_keys(paths: list[str], store: Any, platform: Any) -> set[str]:
    """Keys of the manifests' engines buildable on ``platform`` (hashing through the memo)."""
    from trtops.plan import load_specs, memo_for, spec_keys

    specs = load_specs(paths, check_models=False, cache_dir=getattr(store, "root", None))
    return {key.key for key in spec_keys(specs, platform, memo_for(store)).keys.values()}


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
    warning: str | None = None  # the current keys could not be computed

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
                    on_remove: Callable[[dict[str, Any]], None] | None = None) -> GcResult:
    """Delete entries nothing keeps, partial entries and staging leftovers older than
    ``grace_seconds``, under the store's ``publish`` lock.

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

    Returns:
        A :class:`GcResult`.
    """
    from trtops.cache.entries import ref_keys
    from trtops.cache.layout import parse_time

    result = GcResult(current=len(keep_current), locked=len(keep_locked))
    with store.lock("publish"):
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
        if hasattr(store, "clean_tmp") and not dry_run:
            result.leftovers = store.clean_tmp(grace_seconds)
    return result


def gc(store: Any, paths: Sequence[str], platform: Any, *, explicit_paths: bool,
       dry_run: bool = False, locks: Sequence[Any] = (), older_than: float | None = None,
       on_remove: Callable[[dict[str, Any]], None] | None = None) -> GcResult:
    """``trtops gc`` on a local cache: keep what refs, the manifests' current keys and the
    locks name, remove the rest (only entries older than ``older_than`` when given).

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
    warning = None
    if paths:
        try:
            keep_current = current_keys(list(paths), store, platform)
        except TrtopsError as exc:
            if explicit_paths:
                raise
            warning = (f"could not compute the current keys of {', '.join(paths)} "
                       f"({exc.message}); keeping referenced and locked entries only")
    locked = set().union(*(lock.keys() for lock in locks)) if locks else set()
    result = collect_garbage(store, keep_current=keep_current, keep_locked=locked,
                             older_than=older_than, dry_run=dry_run, on_remove=on_remove)
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
