"""The local filesystem engine cache: the entry logic of :mod:`trtops.cache.entry_store`
over a :class:`~trtops.cache.dir_transport.DirTransport`, plus what only a directory has.

Atomicity: an entry is staged in ``<cache>/tmp/`` (same filesystem), every file fsynced,
``meta.json`` written last, then the staging directory is renamed to
``engines/<k[:2]>/<key>``. A directory rename is atomic on POSIX, so readers see either
no entry or a complete one; the per-key file lock makes concurrent writers of one key
(several processes building the same engine) leave exactly one entry. Refs, timing caches
and ``accuracy.json`` are replaced with temp file + ``os.replace`` by the transport. When
``engines/`` is on another filesystem (a mount or symlink: EXDEV), the entry is copied
beside its place first and renamed there (:func:`_rename_dir`), atomic all the same.

Local only: :meth:`LocalStore.adopt_entry` (a pull's verified staging directory becomes the
entry without copying), :meth:`LocalStore.recover_unsynced` (the journal of pulls published
without fsyncs, :mod:`trtops.cache.journal`), file locks, and listing partial entries for
gc and ``cache verify``. Local write failures (a full disk, a read-only directory) are a
:class:`~trtops.errors.CacheError` from :func:`write_error`, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import trtops.cache.layout as layout
from trtops.cache.dir_transport import (
    DirTransport,
    copy_and_hash,
    is_write_failure,
    local_writes,
    write_bytes,
    write_error,
)
from trtops.cache.entries import json_bytes
from trtops.cache.entry_store import ObjectEntries, Progress
from trtops.cache.store import META_FILE, PutResult
from trtops.errors import CacheError
from trtops.fsutil import fsync_path


class LocalStore(ObjectEntries):
    """An engine cache in a local directory (see :mod:`trtops.cache.layout`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """
        Args:
            root: The cache directory (created on first write).
        """
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)
        self.objects = DirTransport(self.root, fsync=True)

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    # ------------------------------------------------------------------ paths

    def entry_dir(self, key: str) -> Path:
        """Directory of an entry (it may not exist)."""
        return self.root / layout.entry_prefix(key)

    @property
    def tmp_dir(self) -> Path:
        """The staging area (``tmp/``, on the cache's filesystem so a rename publishes)."""
        return self.root / layout.TMP_DIR

    @property
    def digest_memo_path(self) -> Path:
        """Where the model digest memo lives for this cache."""
        return self.root / layout.DIGEST_MEMO_FILE

    def _staging(self, label: str) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self.tmp_dir / f"{label}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
        path.mkdir()
        return path

    # ------------------------------------------------------------------ listing what a directory shows

    def list_entry_dirs(self) -> Iterator[str]:
        """Keys of every entry directory, complete or not (for gc and verify)."""
        engines = self.root / layout.ENGINES_DIR
        try:
            prefixes = sorted(e.name for e in os.scandir(engines) if e.is_dir())
        except FileNotFoundError:
            return
        for prefix in prefixes:
            try:
                names = sorted(e.name for e in os.scandir(engines / prefix) if e.is_dir())
            except FileNotFoundError:
                continue
            for name in names:
                # The same rule as every store (entry_store.list_keys): engines/<key[:2]>/<key>.
                if layout.KEY_RE.match(name) and len(prefix) == 2 and name[:2] == prefix:
                    yield name

    def list_files(self, key: str) -> list[str]:
        """Names of the files of an entry (no temp files)."""
        try:
            return sorted(e.name for e in os.scandir(self.entry_dir(key))
                          if e.is_file() and not e.name.startswith("."))
        except FileNotFoundError:
            return []

    # ------------------------------------------------------------------ entries: a directory rename

    def _create_entry(self, key: str, files: Mapping[str, Path | bytes], meta: dict, *,
                      digests: dict[str, str], progress: Progress | None, move: bool,
                      lease: Any) -> bool:
        """Stage the files and meta.json in ``tmp/`` (fsynced), then rename the directory
        into place: the entry appears whole or not at all. With ``move``, path sources
        (already verified and fsynced by the caller) are renamed instead of copied."""
        what = f"cache entry {key[:12]} in {self.root}"
        with local_writes(what):
            staging = self._staging(f"put-{key[:16]}")
        try:
            with local_writes(what):
                for name, source in files.items():
                    if isinstance(source, (bytes, bytearray, memoryview)):
                        write_bytes(staging / name, bytes(source))
                        if progress:
                            progress(len(source))
                    elif move:
                        os.replace(source, staging / name)
                        if progress:
                            progress((staging / name).stat().st_size)
                    else:
                        copy_and_hash(source, staging / name, progress=progress)
                write_bytes(staging / META_FILE, json_bytes(meta))
                fsync_path(staging)
                self._rename_into_place(key, staging, durable=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return True

    def _rename_into_place(self, key: str, staging: Path, *, durable: bool) -> None:
        # Under the entry lock, with no complete entry there.
        final = self.entry_dir(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            # A partial entry (no meta.json: an interrupted copy by another tool); it was
            # never visible, so it can go.
            self._discard(final)
        _rename_dir(staging, final, durable=durable)
        if durable:
            fsync_path(final.parent)

    def _stored_sha256(self, key: str, name: str) -> str | None:
        from trtops.keys.fingerprint import sha256_file

        try:
            return sha256_file(self.entry_dir(key) / layout.check_file_name(name))[0]
        except (FileNotFoundError, NotADirectoryError):
            return None

    def new_staging(self, label: str) -> Path:
        """A new empty directory under ``tmp/`` (on the cache's filesystem) to assemble an
        entry in, for :meth:`adopt_entry`. Leftovers of a crash are removed by
        :meth:`clean_tmp`.

        Args:
            label: A short name (letters, digits, ``-``) to recognize it by.

        Returns:
            The directory.

        Raises:
            CacheError: the cache directory is not writable (or the disk is full).
        """
        with local_writes(f"a staging directory in {self.tmp_dir}"):
            return self._staging(label)

    def adopt_entry(self, key: str, staging: str | os.PathLike[str], meta: dict, *,
                    durable: bool = True) -> PutResult:
        """Make a staging directory (from :meth:`new_staging`) the entry ``key``, create-only
        and atomically, without copying its files.

        The files in it must be complete, verified and fsynced (this is how
        :func:`trtops.cache.transfer.fetch_entry` downloads them). Then meta.json is written
        and fsynced, the directory fsynced, renamed to ``engines/<k[:2]>/<key>`` under the
        entry lock, and its parent fsynced. The staging directory is consumed whatever
        happens: it becomes the entry, or it is removed.

        Args:
            key: The engine key.
            staging: The staging directory (directly under ``tmp/``), holding the entry's
                files and nothing else (no meta.json, no subdirectory).
            meta: Content of meta.json, written last.
            durable: False skips every fsync (meta.json and both directories): only for
                entries recorded in an unsynced journal first (see
                :mod:`trtops.cache.journal`), whose files were not fsynced either.

        Returns:
            ``created`` False when a complete entry with this key already existed (it is
            kept); ``identical`` then says whether its engine has the same sha256.

        Raises:
            ValueError: ``staging`` is not a staging directory of this cache, or holds
                something other than entry files.
            CacheError: a local write failed (disk full, read-only); nothing is visible.
        """
        layout.check_key(key)
        staging = Path(staging)
        try:
            with local_writes(f"cache entry {key[:12]} in {self.root}"):
                if staging.parent.resolve() != self.tmp_dir.resolve() or not staging.is_dir():
                    raise ValueError(f"{staging} is not a staging directory of {self.root}")
                files: dict[str, Path | bytes] = {}
                for item in os.scandir(staging):
                    if item.name.startswith("."):  # a download's temporary file: not ours
                        raise ValueError(f"{staging} holds an unfinished file {item.name!r}")
                    if not item.is_file(follow_symlinks=False) or item.name == META_FILE:
                        raise ValueError(f"{staging} holds {item.name!r}, not an entry file")
                    files[layout.check_file_name(item.name)] = Path(item.path)
                existing = self._existing_meta(key)
                if existing is not None:
                    return PutResult(created=False,
                                     identical=self._same_engine(key, existing, files, meta, {}))
                # All of it is durable before the rename can be: the files (by the caller),
                # meta.json and the names in the directory.
                write_bytes(staging / META_FILE, json_bytes(meta), fsync=durable)
                if durable:
                    fsync_path(staging)
                with self._entry_lock(key):
                    existing = self._existing_meta(key)
                    if existing is not None:
                        return PutResult(created=False,
                                         identical=self._same_engine(key, existing, files, meta, {}))
                    self._rename_into_place(key, staging, durable=durable)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already once renamed
        return PutResult(created=True, identical=True)

    def delete_entry(self, key: str) -> None:
        """Remove an entry; a missing entry is ignored. The directory is first renamed away
        so the entry disappears at once even if removing its files takes a while."""
        with self._entry_lock(key):
            final = self.entry_dir(key)
            if final.exists():
                self._discard(final)

    def _discard(self, path: Path) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        trash = self.tmp_dir / f"trash-{path.name[:16]}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # engines/ on another filesystem than tmp/: away under a name no reader lists.
            trash = path.parent / f".trash-{path.name[:16]}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
            try:
                os.rename(path, trash)
            except FileNotFoundError:
                return
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ locks

    def lock(self, name: str, timeout: float = 600.0):
        """An exclusive lock across processes (and threads), as a context manager.

        Args:
            name: Any string; ``timing-<trt>-<gpu>`` for timing caches, ``entry-<key>`` for
                entries, ``publish`` for publishing vs gc.
            timeout: Seconds to wait (0: try once).

        Raises:
            CacheError: when the lock is not acquired in time.
        """
        return _FileLockContext(self.root / layout.LOCKS_DIR / layout.lock_file_name(name), name, timeout)

    # ------------------------------------------------------------------ maintenance

    def recover_unsynced(self) -> Any:
        """Retire the journals of earlier pulls that published entries without fsyncs;
        after a reboot, damaged entries are found and deleted (see
        :func:`trtops.cache.journal.recover`)."""
        import trtops.cache.journal as journal

        return journal.recover(self)

    def clean_tmp(self, older_than: float = 3600.0) -> list[str]:
        """Remove staging leftovers of interrupted writers older than ``older_than`` seconds.

        Returns:
            Names of what was removed.
        """
        removed = []
        now = time.time()
        try:
            entries = list(os.scandir(self.tmp_dir))
        except FileNotFoundError:
            return removed
        for entry in entries:
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if age < older_than:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            removed.append(entry.name)
        return removed


def _rename_dir(staging: Path, final: Path, *, durable: bool = True) -> None:
    """Rename a staged entry to its place (atomic: readers see all of it or nothing).

    When ``engines/`` is on another filesystem than ``tmp/`` (a mount, a symlink: the
    rename fails with EXDEV), the entry is copied to a hidden name beside ``final``, its
    files fsynced, and that renamed: still atomic, within the destination's filesystem.
    Names starting with '.' are never listed as entries; ``staging`` is left to the caller.
    """
    try:
        os.rename(staging, final)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    beside = final.parent / f".{final.name[:16]}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        shutil.copytree(staging, beside)
        if durable:
            for item in os.scandir(beside):
                fsync_path(item.path)
            fsync_path(beside)
        os.rename(beside, final)
    except BaseException:
        shutil.rmtree(beside, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


class _FileLockContext:
    def __init__(self, path: Path, name: str, timeout: float) -> None:
        self.path = path
        self.name = name
        self.timeout = timeout
        self._lock: Any = None

    def __enter__(self) -> _FileLockContext:
        from filelock import FileLock, Timeout

        # A fresh FileLock per use: flock() conflicts between open files, so two holders in
        # one process exclude each other like two processes do.
        self._lock = FileLock(str(self.path), timeout=max(self.timeout, 0), thread_local=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
            raise CacheError(
                f"cache lock {self.name!r} is held by another trtops process "
                f"(waited {self.timeout:g}s)",
                hint=f"wait for it to finish; a stale lock file ({self.path}) is released when "
                "its process exits",
            ) from None
        except OSError as exc:
            self._lock = None
            if not is_write_failure(exc):
                raise
            raise write_error(exc, f"lock file {self.path}") from exc
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# write_error and write_bytes live with the directory transport; callers import them here.
__all__ = ["LocalStore", "write_bytes", "write_error"]
