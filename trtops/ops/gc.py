"""`trtops gc`: remove cache entries that no ref and no engine of the current manifests
points at, and the leftovers of interrupted writes.

Runs under the cache's ``publish`` lock, which :func:`trtops.cache.entries.publish_entry`
also takes, so an engine being published is never mistaken for garbage.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trtops.cache.entries import recorded_size

PARTIAL_GRACE_SECONDS = 3600.0


def current_keys(paths: list[str], store: Any, platform: Any) -> set[str]:
    """Keys of the manifests' engines buildable on ``platform`` (hashing through the memo)."""
    from trtops.plan import load_specs, memo_for, spec_keys

    specs = load_specs(paths, check_models=False, cache_dir=getattr(store, "root", None))
    return {key.key for key in spec_keys(specs, platform, memo_for(store)).keys.values()}


@dataclass
class GcResult:
    """What gc removed (or, in a dry run, would remove)."""

    removed: list[dict[str, Any]] = field(default_factory=list)  # {"key", "size"}
    partial: list[str] = field(default_factory=list)  # keys of entries without meta.json
    leftovers: list[str] = field(default_factory=list)  # staging files of interrupted writers
    referenced: int = 0  # keys some ref points at
    current: int = 0  # keys of the current manifests
    kept: int = 0  # distinct keys kept
    warning: str | None = None  # the current keys could not be computed

    @property
    def bytes(self) -> int:
        return sum(row["size"] for row in self.removed)


def collect_garbage(store: Any, *, keep_current: set[str] | frozenset[str] = frozenset(),
                    dry_run: bool = False,
                    grace_seconds: float = PARTIAL_GRACE_SECONDS) -> GcResult:
    """Delete entries that no ref and no key of ``keep_current`` names, partial entries and
    staging leftovers older than ``grace_seconds``, under the store's ``publish`` lock.

    Args:
        store: The cache.
        keep_current: Keys of the current manifests (see :func:`current_keys`).
        dry_run: Only report what would be removed.
        grace_seconds: Partial entries and leftovers younger than this may belong to a
            writer still running, and are kept.

    Returns:
        A :class:`GcResult`.
    """
    result = GcResult(current=len(keep_current))
    # A dry run only reads, so it works on a read-only cache: no lock (an entry published
    # meanwhile may show up as partial in the report; nothing is deleted).
    with contextlib.nullcontext() if dry_run else store.lock("publish"):
        referenced = {record.get("key") for _, record in store.list_refs()}
        keep = referenced | set(keep_current)
        result.referenced, result.kept = len(referenced), len(keep)
        for key in list(store.list_keys()):
            if key in keep:
                continue
            result.removed.append({"key": key, "size": recorded_size(store, key)})
            if not dry_run:
                store.delete_entry(key)
        if hasattr(store, "list_entry_dirs"):
            now = time.time()
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
       dry_run: bool = False) -> GcResult:
    """``trtops gc``: keep what refs and the manifests' current keys name, remove the rest.

    Args:
        store: The cache.
        paths: Manifest paths whose current keys are kept (may be empty).
        platform: The platform the current keys are computed for.
        explicit_paths: The user named ``paths``: a manifest error then fails gc; for
            default paths it only narrows gc to referenced entries (with a warning).
        dry_run: Only report.

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
                       f"({exc.message}); keeping referenced entries only")
    result = collect_garbage(store, keep_current=keep_current, dry_run=dry_run)
    result.warning = warning
    return result
