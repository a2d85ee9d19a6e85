"""The object transport on a local (or shared) directory.

Writes go to a temporary name beside the target, are fsynced, then renamed (``os.replace``)
or, create-only, hard-linked into place (``os.link`` fails when the name exists, atomically,
so of racing creators exactly one wins). The conditional primitives for leases take a file
lock per object so each read-compare-write is atomic among processes on one machine (and on
NFS with working locks); an object's ETag is the sha256 of its content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from trtops.fsutil import FILE_MODE, atomic_write, fsync_path

_COPY_CHUNK = 1 << 20


class DirTransport:
    """Byte objects as files under ``root`` (implements
    :class:`~trtops.cache.transport.ObjectTransport`)."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"DirTransport({str(self.root)!r})"

    def path(self, name: str) -> Path:
        """The file of an object (names are relative, ``/``-separated)."""
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"object name {name!r} leaves the transport's directory")
        return self.root / name

    def _temp(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")

    # ------------------------------------------------------------------ plain objects

    def get(self, name: str) -> bytes | None:
        """The whole object, or None when absent."""
        try:
            return self.path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def get_range(self, name: str, start: int, end: int) -> bytes | None:
        """Bytes ``start`` to ``end`` (exclusive), or None when absent."""
        try:
            with open(self.path(name), "rb") as handle:
                handle.seek(start)
                return handle.read(max(0, end - start))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, name: str) -> int | None:
        """Size in bytes, or None when absent."""
        try:
            info = self.path(name).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info.st_size if not os.path.isdir(self.path(name)) else None

    def put(self, name: str, data: bytes) -> None:
        """Create or replace atomically (temp name, fsync, rename)."""
        atomic_write(self.path(name), bytes(data), fsync=self.fsync)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create-only: link a fully written temporary file to the name; False when the
        name exists (the existing object is left alone)."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp(path)
        try:
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
        directory, _, start = prefix.rpartition("/")
        base = self.root / directory if directory else self.root
        found = []
        for current, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file_name in names:
                if file_name.startswith("."):
                    continue
                name = Path(current, file_name).relative_to(self.root).as_posix()
                if name.startswith(prefix):
                    found.append(name)
        yield from sorted(found)

    def delete(self, name: str) -> None:
        """Remove an object (absent is fine)."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self.path(name).unlink()

    def get_to_file(self, name: str, dest: Path) -> bool:
        """Copy an object into ``dest`` under a temporary name, then rename; False when
        absent."""
        dest = Path(dest)
        try:
            source = open(self.path(name), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        temp = self._temp(dest)
        with source:
            try:
                with open(temp, "wb") as target:
                    shutil.copyfileobj(source, target, _COPY_CHUNK)
                    target.flush()
                    if self.fsync:
                        os.fsync(target.fileno())
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
                raise
        os.replace(temp, dest)
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
