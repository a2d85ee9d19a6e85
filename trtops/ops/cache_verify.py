"""`trtops cache verify`: re-hash every stored entry against its meta.json (see
:func:`trtops.cache.entries.check_entry`); report corrupt and partial entries, optionally
delete them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from trtops.cache.entries import check_entry


@dataclass
class CacheCheck:
    """Findings of :func:`verify_cache`."""

    checked: int
    corrupt: list[dict[str, str]] = field(default_factory=list)  # {"key", "problem"}
    partial: list[str] = field(default_factory=list)  # keys of entries without meta.json
    deleted: bool = False

    @property
    def bad(self) -> bool:
        return bool(self.corrupt or self.partial)


def verify_cache(store: Any, *, jobs: int | None = None, delete: bool = False) -> CacheCheck:
    """Check every complete entry against its meta.json and find partial entries.

    Args:
        store: The cache.
        jobs: Hashing threads (default: cores).
        delete: Remove corrupt and partial entries.

    Returns:
        A :class:`CacheCheck`.
    """
    from trtops.keys.memo import default_workers

    keys = list(store.list_keys())
    with ThreadPoolExecutor(max_workers=jobs or default_workers()) as pool:
        reasons = list(pool.map(lambda key: check_entry(store, key), keys))
    found = CacheCheck(len(keys), [{"key": k, "problem": r} for k, r in zip(keys, reasons) if r])
    if hasattr(store, "list_entry_dirs"):
        complete = set(keys)
        found.partial = [k for k in store.list_entry_dirs()
                         if k not in complete and not store.has_entry(k)]
    if delete:
        for item in found.corrupt:
            store.delete_entry(item["key"])
        for key in found.partial:
            store.delete_entry(key)
        found.deleted = found.bad
    return found
