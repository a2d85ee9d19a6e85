"""Engine caches: an object transport (:mod:`.transport`: a directory, :mod:`.dir_transport`;
S3, :mod:`.s3_transport`) with the entries written once above it (:mod:`.entry_store`,
implementing the store protocol of :mod:`.store` in the layout of :mod:`.layout`), the
backends made of the two (:mod:`.local`, :mod:`.s3`), entry facts and publishing over any
store (:mod:`.entries`) and moving entries between two stores (:mod:`.transfer`).

:func:`open_store` is the one place that turns a location into a store; remote backends
register in :data:`BACKENDS` (scheme -> "module:factory", imported only when used).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trtops.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from trtops.cache.store import EntryStore

DEFAULT_CACHE = "cache"
CACHE_ENV = "TRTOPS_CACHE"

# scheme -> "module:callable(url) -> EntryStore". Remote backends add themselves here.
BACKENDS: dict[str, str] = {
    "s3": "trtops.cache.s3:open_s3_store",
}


def default_cache_url(paths: Sequence[str | os.PathLike[str]] = ()) -> str:
    """The cache of the project of ``paths`` (manifests or a saved plan; none: the current
    directory), unless ``$TRTOPS_CACHE`` names one: the project file's ``cache`` setting
    (relative to that file), else ``cache/`` in the project root (see :mod:`trtops.project`).

    Raises:
        InputError: for a bad project file.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return env
    from trtops.project import find_project

    project = find_project(paths)
    setting = project.cache or DEFAULT_CACHE
    if is_remote(setting):
        return setting
    return os.path.join(project.root, os.path.expanduser(setting))


def _scheme(url: str) -> str:
    head, sep, _ = url.partition("://")
    if sep and head.isalnum() and len(head) > 1:  # not a Windows drive letter
        return head.lower()
    return ""


def is_remote(url: str) -> bool:
    """True for URLs of remote backends (s3://...), False for local paths."""
    return _scheme(url) not in ("", "file")


def open_store(url_or_path: str | os.PathLike[str] | None = None, *,
               write_for: str | None = None) -> EntryStore:
    """Open an engine cache.

    Args:
        url_or_path: A local directory (or ``file://`` URL), a remote URL such as
            ``s3://bucket/prefix``, or None for :func:`default_cache_url`.
        write_for: The command that will write to this (local) cache: it is checked to be
            writable now, one clear error up front (see ``LocalStore.check_writable``).

    Returns:
        A store implementing :class:`~trtops.cache.store.EntryStore`.

    Raises:
        InputError: for an unknown URL scheme.
        CacheError: for a local cache ``write_for`` cannot write.
    """
    url = os.fspath(url_or_path) if url_or_path is not None else default_cache_url()
    scheme = _scheme(url)
    if scheme in ("", "file"):
        from trtops.cache.local import LocalStore

        store = LocalStore(url[len("file://"):] if scheme == "file" else url)
        if write_for is not None:
            store.check_writable(write_for)
        # Entries that a pull published without fsyncs are checked before anything reads
        # them (see trtops.cache.journal); nothing to do costs one failed scandir.
        store.recover_unsynced()
        return store
    target = BACKENDS.get(scheme)
    if target is None:
        raise InputError(
            f"unsupported cache location {url!r}",
            hint="use a local directory or one of: " + ", ".join(f"{s}://" for s in sorted(BACKENDS)),
        )
    module_name, _, factory = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise InputError(f"{scheme}:// caches are not available in this trtops build") from None
        raise
    return getattr(module, factory)(url)


_LAZY = {
    "LocalStore": "trtops.cache.local",
    "publish_entry": "trtops.cache.entries",
    "record_ref": "trtops.cache.entries",
    "ensure_ref": "trtops.cache.entries",
    "entry_state": "trtops.cache.entries",
    "read_accuracy": "trtops.cache.entries",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trtops.cache' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BACKENDS", "CACHE_ENV", "DEFAULT_CACHE", "LocalStore",
    "default_cache_url", "ensure_ref", "entry_state", "is_remote", "open_store", "publish_entry",
    "read_accuracy", "record_ref",
]
