"""The local filesystem engine cache.

Atomicity: an entry is staged in ``<cache>/tmp/`` (same filesystem), every file fsynced,
``meta.json`` written last, then the staging directory is renamed to
``engines/<k[:2]>/<key>``. A directory rename is atomic on POSIX, so readers see either
no entry or a complete one; the per-key file lock makes concurrent writers of one key
(several processes building the same engine) leave exactly one entry. Refs, timing caches
and ``accuracy.json`` are replaced with temp file + ``os.replace``.

:func:`write_error` turns local write failures (a full disk, a read-only directory) into a
:class:`~trtops.errors.CacheError`, never a traceback. The entry logic that works on any
store (publishing, refs, states) is :mod:`trtops.cache.entries`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from trtops.cache import layout
from trtops.cache.entries import file_digest, json_bytes, load_json
from trtops.cache.store import META_FILE, PutResult
from trtops.errors import CacheError
from trtops.fsutil import atomic_write, fsync_path
from trtops.names import DISK_FULL_ERRNOS, ENGINE_FILE

_COPY_CHUNK = 1 << 20


# Write failures of the machine, not of trtops: reported as CacheError (others propagate).
_WRITE_ERRNOS = DISK_FULL_ERRNOS | {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _is_write_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS


def write_error(exc: OSError, what: str) -> CacheError:
    """A user-facing error for a failed local write (disk full, file too large, quota,
    read-only or unwritable directory), instead of a traceback.

    Args:
        exc: The OSError raised by the write.
        what: What was being written, e.g. ``cache entry 3f2a... in /path/cache``.

    Returns:
        A :class:`CacheError` (exit code 1) to raise ``from exc``.
    """
    reason = exc.strerror or str(exc)
    if exc.errno in DISK_FULL_ERRNOS:
        hint = ("nothing partial was kept; free disk space (or raise the quota or file size "
                "limit) and run the command again")
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "make the directory writable, or point --cache elsewhere"
    else:
        hint = "nothing partial was kept; fix the cause and run the command again"
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return CacheError(f"cannot write {what}: {reason}{where}", hint=hint)


def write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write a new file (no temp name: for staging directories nobody else reads)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())


def _copy_file(src: Path, dest: Path) -> tuple[str, int]:
    """Copy and hash in one pass; returns (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_COPY_CHUNK)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as source, open(dest, "wb") as target:
        while True:
            count = source.readinto(buffer)
            if not count:
                break
            chunk = view[:count]
            digest.update(chunk)
            target.write(chunk)
            size += count
        target.flush()
        os.fsync(target.fileno())
    return digest.hexdigest(), size


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data, fsync=True)
    except OSError as exc:
        if not _is_write_failure(exc):
            raise
        raise write_error(exc, str(path)) from exc






class LocalStore:
    """An engine cache in a local directory (see :mod:`trtops.cache.layout`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """
        Args:
            root: The cache directory (created on first write).
        """
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)
        self._engines = os.path.join(self.url, layout.ENGINES_DIR)

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    # ------------------------------------------------------------------ paths

    def entry_dir(self, key: str) -> Path:
        """Directory of an entry (it may not exist)."""
        return self.root / layout.entry_prefix(key)

    def _file(self, key: str, name: str) -> Path:
        return self.entry_dir(key) / layout.check_file_name(name)

    def _file_str(self, key: str, name: str) -> str:
        # The planner asks for thousands of entries: plain strings beat pathlib here.
        layout.check_key(key)
        return os.path.join(self._engines, key[:2], key, layout.check_file_name(name))

    @property
    def tmp_dir(self) -> Path:
        return self.root / layout.TMP_DIR

    def _staging(self, label: str) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self.tmp_dir / f"{label}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
        path.mkdir()
        return path

    # ------------------------------------------------------------------ entries

    def has_entry(self, key: str) -> bool:
        """True when the entry is complete (its meta.json exists)."""
        return os.path.isfile(self._file_str(key, META_FILE))

    def read_meta(self, key: str) -> dict | None:
        """The entry's meta.json, or None when there is no complete entry.

        Raises:
            CacheError: when meta.json exists but is not valid JSON.
        """
        data = self.read_file(key, META_FILE)
        if data is None:
            return None
        meta = load_json(data, f"meta.json of entry {key}")
        if not isinstance(meta, dict):
            raise CacheError(f"meta.json of entry {key} is not an object",
                             hint="run `trtops cache verify --delete` to drop damaged entries")
        return meta

    def list_keys(self) -> Iterator[str]:
        """Keys of all complete entries, sorted."""
        for key in self.list_entry_dirs():
            if (self.entry_dir(key) / META_FILE).is_file():
                yield key

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
                if layout.KEY_RE.match(name) and name.startswith(prefix):
                    yield name

    def list_files(self, key: str) -> list[str]:
        """Names of the files of an entry (no temp files)."""
        try:
            return sorted(e.name for e in os.scandir(self.entry_dir(key))
                          if e.is_file() and not e.name.startswith("."))
        except FileNotFoundError:
            return []

    def read_file(self, key: str, name: str) -> bytes | None:
        """One file of an entry, or None when absent."""
        try:
            with open(self._file_str(key, name), "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def fetch_file(self, key: str, name: str, dest: Path) -> bool:
        """Copy one file of an entry to ``dest`` atomically (temp file next to ``dest``,
        then rename); False when absent (``dest`` is left alone)."""
        source = self._file(key, name)
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        except OSError as exc:
            if not _is_write_failure(exc):
                raise
            raise write_error(exc, str(dest)) from exc
        os.close(fd)
        try:
            try:
                _copy_file(source, Path(tmp))
            except (FileNotFoundError, NotADirectoryError):
                os.unlink(tmp)
                return False
            os.replace(tmp, dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if _is_write_failure(exc):
                raise write_error(exc, f"{name} of entry {key[:12]} to {dest}") from exc
            raise
        return True

    def put_entry(self, key: str, files: Mapping[str, Path | bytes], meta: dict, *,
                  move: bool = False) -> PutResult:
        """Create an entry, create-only and atomically (see module docstring).

        Args:
            key: The engine key.
            files: File name -> path or bytes (``meta.json`` must not be among them).
            meta: Content of meta.json, written last.
            move: Rename path sources into the entry instead of copying them (they must be
                on the cache's filesystem, e.g. under ``tmp_dir``, and fsynced; the caller
                gives them up). :meth:`adopt_entry` avoids even the renames.

        Returns:
            ``created`` False when a complete entry with this key already existed (it is
            kept); ``identical`` then says whether its engine has the same sha256.
        """
        layout.check_key(key)
        if META_FILE in files:
            raise ValueError("meta.json is written from `meta`, not passed in `files`")
        for name in files:
            layout.check_file_name(name)
        if self.has_entry(key):
            return PutResult(created=False, identical=self._same_engine(key, files, meta))
        with self.lock(f"entry-{key}"):
            if self.has_entry(key):
                return PutResult(created=False, identical=self._same_engine(key, files, meta))
            try:
                staging = self._staging(f"put-{key[:16]}")
            except OSError as exc:
                if not _is_write_failure(exc):
                    raise
                raise write_error(exc, f"cache entry {key[:12]} in {self.root}") from exc
            try:
                for name, source in files.items():
                    if isinstance(source, (bytes, bytearray, memoryview)):
                        write_bytes(staging / name, bytes(source))
                    elif move:  # already verified and fsynced by the caller
                        os.replace(source, staging / name)
                    else:
                        _copy_file(Path(source), staging / name)
                write_bytes(staging / META_FILE, json_bytes(meta))
                fsync_path(staging)
                final = self.entry_dir(key)
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():
                    # A partial entry (no meta.json: an interrupted copy by another tool);
                    # it was never visible, so it can go.
                    self._discard(final)
                os.rename(staging, final)
                fsync_path(final.parent)
            except BaseException as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if _is_write_failure(exc):
                    # Disk full, file too large, quota: the staged files are gone and no
                    # entry appeared; say so instead of a traceback.
                    raise write_error(exc, f"cache entry {key[:12]} in {self.root}") from exc
                raise
        return PutResult(created=True, identical=True)

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
        try:
            return self._staging(label)
        except OSError as exc:
            if not _is_write_failure(exc):
                raise
            raise write_error(exc, f"a staging directory in {self.tmp_dir}") from exc

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
            if staging.parent.resolve() != self.tmp_dir.resolve() or not staging.is_dir():
                raise ValueError(f"{staging} is not a staging directory of {self.root}")
            files: dict[str, Path | bytes] = {}
            for item in os.scandir(staging):
                if item.name.startswith("."):  # a download's temporary file: not ours
                    raise ValueError(f"{staging} holds an unfinished file {item.name!r}")
                if not item.is_file(follow_symlinks=False) or item.name == META_FILE:
                    raise ValueError(f"{staging} holds {item.name!r}, not an entry file")
                files[layout.check_file_name(item.name)] = Path(item.path)
            if self.has_entry(key):
                return PutResult(created=False, identical=self._same_engine(key, files, meta))
            # All of it is durable before the rename can be: the files (by the caller),
            # meta.json and the names in the directory.
            write_bytes(staging / META_FILE, json_bytes(meta), fsync=durable)
            if durable:
                fsync_path(staging)
            final = self.entry_dir(key)
            with self.lock(f"entry-{key}"):
                if self.has_entry(key):
                    return PutResult(created=False, identical=self._same_engine(key, files, meta))
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():
                    # A partial entry (no meta.json: an interrupted copy by another tool);
                    # it was never visible, so it can go.
                    self._discard(final)
                os.rename(staging, final)
            if durable:
                fsync_path(final.parent)
        except BaseException as exc:
            if _is_write_failure(exc):
                raise write_error(exc, f"cache entry {key[:12]} in {self.root}") from exc
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already once renamed
        return PutResult(created=True, identical=True)

    def _same_engine(self, key: str, files: Mapping[str, Path | bytes], meta: Mapping[str, Any]) -> bool:
        existing = self.read_meta(key) or {}
        old = existing.get("engine_sha256")
        new = meta.get("engine_sha256")
        if old and new:
            return old == new
        source = files.get(ENGINE_FILE)
        current = self._file(key, ENGINE_FILE)
        if source is None or not current.is_file():
            return False
        return file_digest(source)[0] == file_digest(current)[0]

    def replace_file(self, key: str, name: str, data: bytes) -> None:
        """Atomically replace a mutable file (``accuracy.json``) of an existing entry.

        Raises:
            ValueError: for files that are immutable.
            CacheError: when the entry does not exist.
        """
        if name not in layout.MUTABLE_FILES:
            raise ValueError(f"{name} of an entry is immutable; only {', '.join(layout.MUTABLE_FILES)} "
                             "may be replaced")
        if not self.has_entry(key):
            raise CacheError(f"no cache entry {key}", hint="build it first (`trtops apply`)")
        _atomic_write(self._file(key, name), bytes(data))

    def delete_entry(self, key: str) -> None:
        """Remove an entry; a missing entry is ignored. The directory is first renamed away
        so the entry disappears at once even if removing its files takes a while."""
        with self.lock(f"entry-{key}"):
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
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ refs

    def read_ref(self, ref: str) -> dict | None:
        """The record of a logical engine, or None."""
        try:
            data = (self.root / layout.ref_path(ref)).read_bytes()
        except FileNotFoundError:
            return None
        record = load_json(data, f"ref {ref}")
        return record if isinstance(record, dict) else None

    def write_ref(self, ref: str, data: dict) -> None:
        """Atomically write a ref record."""
        _atomic_write(self.root / layout.ref_path(ref), json_bytes(data))

    def list_refs(self) -> Iterator[tuple[str, dict]]:
        """All refs with their records, sorted by name (unreadable ones are skipped)."""
        base = self.root / layout.REFS_DIR
        found = []
        for directory, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if name.startswith("."):
                    continue
                relative = os.path.relpath(os.path.join(directory, name), base)
                ref = layout.ref_from_path(relative)
                if ref is not None:
                    found.append(ref)
        for ref in sorted(found):
            try:
                record = self.read_ref(ref)
            except CacheError:
                continue
            if record is not None:
                yield ref, record

    # ------------------------------------------------------------------ timing caches

    def read_timing_cache(self, tensorrt: str, gpu_signature: str) -> bytes | None:
        """The timing cache for a TensorRT version and GPU signature, or None."""
        try:
            return (self.root / layout.timing_path(tensorrt, gpu_signature)).read_bytes()
        except FileNotFoundError:
            return None

    def write_timing_cache(self, tensorrt: str, gpu_signature: str, data: bytes) -> None:
        """Atomically replace a timing cache (callers merge under :meth:`lock`)."""
        _atomic_write(self.root / layout.timing_path(tensorrt, gpu_signature), bytes(data))

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

    def check_writable(self, command: str) -> None:
        """Fail once, before any work, when this cache cannot be written (a read-only
        filesystem or directory, a file where a directory should be), instead of failing
        engine after engine. Creates the cache directory if needed (the write it probes).

        Args:
            command: The command that must write, for the message (``apply``, ``pull``...).

        Raises:
            CacheError: saying where and why, and which commands work on it as it is.
        """
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=self.tmp_dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise CacheError(
                f"`trtops {command}` writes to the cache {self.url}, which cannot be written: "
                f"{reason}{where}",
                hint="make it writable, or point --cache or TRTOPS_CACHE at a writable "
                "directory; plan, status, emit and gc --dry-run only read it",
            ) from None

    # ------------------------------------------------------------------ maintenance

    def recover_unsynced(self) -> Any:
        """Retire the journals of earlier pulls that published entries without fsyncs;
        after a reboot, damaged entries are found and deleted (see
        :func:`trtops.cache.journal.recover`)."""
        from trtops.cache import journal

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
            if not _is_write_failure(exc):
                raise
            raise write_error(exc, f"lock file {self.path}") from exc
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None














