"""The object transport on a local (or shared) directory.

Writes go to a temporary name beside the target, are fsynced, then renamed (``os.replace``)
or, create-only, hard-linked into place (``os.link`` fails when the name exists, atomically,
so of racing creators exactly one wins). The conditional primitives for leases take a file
lock per object so each read-compare-write is atomic among processes on one machine (and on
NFS with working locks); an object's ETag is the sha256 of its content.

A failed local write (a full disk, a file size limit, a read-only directory) is a
:class:`~trtops.errors.CacheError` made by :func:`write_error`, never a traceback; nothing
partial is left under the object's name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from trtops.errors import CacheError
from trtops.fsutil import FILE_MODE, atomic_write, fsync_path
from trtops.names import DISK_FULL_ERRNOS

_COPY_CHUNK = 1 << 20

# Write failures of the machine, not of trtops: reported as CacheError (others propagate).
_WRITE_ERRNOS = DISK_FULL_ERRNOS | {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def is_write_failure(exc: BaseException) -> bool:
    """True for an OSError of a local write that the user must fix (disk full, quota, file
    size limit, read-only or unwritable directory, I/O error)."""
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


@contextlib.contextmanager
def local_writes(what: str) -> Iterator[None]:
    """Turn a write failure of the machine inside the block into :func:`write_error`."""
    try:
        yield
    except OSError as exc:
        if not is_write_failure(exc):
            raise
        raise write_error(exc, what) from exc


def write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write a new file (no temp name: for staging directories nobody else reads)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())


def copy_and_hash(src: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                  fsync: bool = True,
                  progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Copy a file and hash it in one pass (``dest`` is created or truncated).

    Returns:
        (sha256, size) of what was copied.
    """
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
            if progress:
                progress(count)
        target.flush()
        if fsync:
            os.fsync(target.fileno())
    return digest.hexdigest(), size


class DirTransport:
    """Byte objects as files under ``root`` (implements
    :class:`~trtops.cache.transport.ObjectTransport`)."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._root = os.fspath(self.root)

    def __repr__(self) -> str:
        return f"DirTransport({self._root!r})"

    def path(self, name: str) -> Path:
        """The file of an object (names are relative, ``/``-separated)."""
        return Path(self._path(name))

    def _path(self, name: str) -> str:
        # Plain strings: a planner asks for thousands of objects, and pathlib costs here.
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"object name {name!r} leaves the transport's directory")
        return os.path.join(self._root, name)

    def _temp(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")

    # ------------------------------------------------------------------ plain objects

    def get(self, name: str, limit: int | None = None) -> bytes | None:
        """The whole object (at most ``limit + 1`` bytes), or None when absent."""
        try:
            with open(self._path(name), "rb") as handle:
                return handle.read() if limit is None else handle.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def get_range(self, name: str, start: int, end: int) -> bytes | None:
        """Bytes ``start`` to ``end`` (exclusive), or None when absent."""
        try:
            with open(self._path(name), "rb") as handle:
                handle.seek(start)
                return handle.read(max(0, end - start))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, name: str) -> int | None:
        """Size in bytes, or None when absent."""
        try:
            info = os.stat(self._path(name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def put(self, name: str, data: bytes) -> None:
        """Create or replace atomically (temp name, fsync, rename)."""
        path = self._path(name)
        with local_writes(path):
            atomic_write(path, bytes(data), fsync=self.fsync)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create-only: link a fully written temporary file to the name; False when the
        name exists (the existing object is left alone)."""
        path = self.path(name)
        temp = self._temp(path)
        try:
            with local_writes(str(path)):
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(temp, "wb") as handle:
                    os.fchmod(handle.fileno(), FILE_MODE)
                    handle.write(data)
                    handle.flush()
                    if self.fsync:
                        os.fsync(handle.fileno())
                try:
                    os.link(temp, path)
                except FileExistsError:
                    return False
            if self.fsync:
                fsync_path(path.parent)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def list(self, prefix: str) -> Iterator[str]:
        """Names under ``prefix`` (sorted; temporary and hidden files are not objects)."""
        directory, _, _ = prefix.rpartition("/")
        base = os.path.join(self._root, directory) if directory else self._root
        skip = len(self._root) + 1
        found = []
        for current, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file_name in names:
                if file_name.startswith("."):
                    continue
                name = os.path.join(current, file_name)[skip:].replace(os.sep, "/")
                if name.startswith(prefix):
                    found.append(name)
        yield from sorted(found)

    def delete(self, name: str) -> None:
        """Remove an object (absent is fine)."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(self._path(name))

    def get_to_file(self, name: str, dest: Path) -> bool:
        """Copy an object into ``dest`` under a temporary name, then rename; False when
        absent."""
        return self.download_file(name, dest)

    def download_file(self, name: str, dest: Path, *, expected_sha256: str | None = None,
                      progress: Callable[[int], None] | None = None, fsync: bool | None = None,
                      timings: dict[str, float] | None = None) -> bool:
        """Copy an object into ``dest`` (its directory is created), hashed on the way and
        renamed into place only when it has ``expected_sha256``: the same verified download
        as :meth:`trtops.cache.s3_transport.S3Transport.download_file`.

        Args:
            name: The object.
            dest: Final path (written under a temporary name beside it).
            expected_sha256: Digest the content must have (None: not checked).
            progress: Called with byte counts as they are copied.
            fsync: Flush before the rename (default: the transport's ``fsync``).
            timings: When given, the seconds of the copy are added under ``body``.

        Returns:
            False when the object does not exist (``dest`` is left alone).

        Raises:
            CacheError: a digest mismatch (nothing written), or a failed local write.
        """
        dest = Path(dest)
        started = time.perf_counter()
        source = self._path(name)
        if not os.path.isfile(source):
            return False
        with local_writes(f"{dest.name} (a copy of {name})"):
            dest.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp(dest)
        try:
            with local_writes(f"{dest.name} (a copy of {name})"):
                try:
                    digest, _ = copy_and_hash(source, temp, progress=progress,
                                              fsync=self.fsync if fsync is None else fsync)
                except (FileNotFoundError, NotADirectoryError):
                    if not os.path.isfile(source):  # removed meanwhile
                        with contextlib.suppress(FileNotFoundError):
                            temp.unlink()
                        return False
                    raise
            if expected_sha256 and digest != expected_sha256:
                raise CacheError(
                    f"sha256 mismatch for {self._root}/{name}: expected {expected_sha256[:16]}..., "
                    f"got {digest[:16]}...",
                    hint="the copy there is corrupt or was replaced; nothing was written",
                )
            os.replace(temp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        if timings is not None:
            timings["body"] = timings.get("body", 0.0) + time.perf_counter() - started
        return True

    # ------------------------------------------------------------------ conditional (leases)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        from filelock import FileLock

        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".guard", timeout=60):
            yield path

    @staticmethod
    def _etag(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def create_object(self, name: str, data: bytes) -> str | None:
        """Create-only write; the new ETag, or None when the object exists."""
        with self._locked(name) as path:
            if path.exists():
                return None
            self._replace(path, data)
            return self._etag(data)

    def read_object(self, name: str) -> tuple[bytes, str] | None:
        """Bytes and ETag, or None when absent."""
        data = self.get(name)
        return None if data is None else (data, self._etag(data))

    def replace_object(self, name: str, data: bytes, if_match: str) -> str | None:
        """Replace while the ETag is still ``if_match``; None when it changed."""
        with self._locked(name) as path:
            current = self.get(name)
            if current is None or self._etag(current) != if_match:
                return None
            self._replace(path, data)
            return self._etag(data)

    def delete_object(self, name: str, if_match: str | None = None) -> bool:
        """Delete (only while the ETag is ``if_match`` when given); False when it changed."""
        with self._locked(name) as path:
            current = self.get(name)
            if current is None:
                return if_match is None
            if if_match is not None and self._etag(current) != if_match:
                return False
            path.unlink()
            return True
