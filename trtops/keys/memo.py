"""sha256 of files, streamed and memoized by (path, size, mtime_ns, inode) in the user's
cache directory (:func:`user_memo_path`), so a warm plan stats files instead of reading
them; misses are hashed on several threads (``hashlib`` releases the GIL).

The memo is not part of any engine cache: ``plan`` is read-only on the cache, and a memo
keyed by absolute paths serves every project of the user alike."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# A file modified this close to the moment it was hashed may be modified again without its
# mtime changing (coarse kernel timestamps), so such memo entries are re-hashed next time.
RACY_NS = 1_000_000_000

_CHUNK = 1 << 20
_MEMO_VERSION = 1
_MEMO_LIMIT = 20_000


MEMO_FILE = "digests.json"
XDG_CACHE_ENV = "XDG_CACHE_HOME"


def user_memo_path() -> Path | None:
    """``$XDG_CACHE_HOME/trtops/digests.json`` (default ``~/.cache/trtops/digests.json``);
    None when there is no home directory to put it in (the memo then lives in memory)."""
    base = os.environ.get(XDG_CACHE_ENV)
    if not base or not os.path.isabs(base):  # the XDG spec: relative paths are invalid
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):
            return None
    return Path(base) / "trtops" / MEMO_FILE


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream a file through sha256.

    Args:
        path: The file.

    Returns:
        (hex digest, size in bytes).
    """
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def default_workers() -> int:
    """Hashing threads: one per core (sha256 is CPU-bound), at most 16."""
    return max(1, min(16, os.cpu_count() or 1))


class DigestMemo:
    """sha256 of files memoized by (path, size, mtime_ns, inode) in a small JSON file.

    Not thread-safe by itself: :func:`hash_files` updates it from the calling thread only.
    Concurrent processes may each save; the last one wins and the others' new entries are
    merged in when they save (a lost entry only costs a re-hash).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        """
        Args:
            path: The memo file; None keeps the memo in memory only.
        """
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        if self.path is not None:
            self.entries = self._read(self.path)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return {}  # missing or damaged memo: only costs re-hashing
        if not isinstance(data, dict) or data.get("version") != _MEMO_VERSION:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    @staticmethod
    def _matches(entry: Mapping[str, Any], st: os.stat_result) -> bool:
        return (
            entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns
            and entry.get("ino") == st.st_ino
            and isinstance(entry.get("sha256"), str)
            # racy entries (file modified just before it was hashed) are not trusted
            and int(entry.get("hashed_at_ns", 0)) - st.st_mtime_ns > RACY_NS
        )

    def lookup(self, path: str, st: os.stat_result) -> dict[str, Any] | None:
        """The memo entry of ``path`` if it still describes the file ``st`` describes."""
        entry = self.entries.get(path)
        if entry is not None and self._matches(entry, st):
            return entry
        return None

    def record(self, path: str, st: os.stat_result, sha256: str, hashed_at_ns: int) -> dict[str, Any]:
        """Remember a digest computed from a read that started at ``hashed_at_ns``."""
        entry = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ino": st.st_ino,
            "sha256": sha256,
            "hashed_at_ns": hashed_at_ns,
        }
        old = self.entries.get(path)
        if old is not None and old.get("sha256") == sha256:
            # Same content (e.g. only touched): derived data is still right.
            for name, value in old.items():
                entry.setdefault(name, value)
        self.entries[path] = entry
        self._dirty.add(path)
        return entry

    def set_extra(self, path: str, name: str, value: Any) -> None:
        """Attach derived data (e.g. an ONNX file's external-data locations) to an entry."""
        entry = self.entries.get(path)
        if entry is not None and entry.get(name) != value:
            entry[name] = value
            self._dirty.add(path)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    def save(self) -> None:
        """Write the memo atomically (temp file + rename) if anything changed."""
        if self.path is None or not self._dirty:
            return
        merged = self._read(self.path)
        for path in self._dirty:
            if path in self.entries:
                merged[path] = self.entries[path]
        if len(merged) > _MEMO_LIMIT:
            # Oldest hashes go first; they are the least likely to be asked again.
            ordered = sorted(merged.items(), key=lambda item: item[1].get("hashed_at_ns", 0))
            merged = dict(ordered[-_MEMO_LIMIT:])
        data = json.dumps({"version": _MEMO_VERSION, "files": merged}, separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".digests.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.entries = merged
        self._dirty.clear()


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def hash_files(
    paths: Iterable[str], memo: DigestMemo | None = None, workers: int | None = None
) -> dict[str, str]:
    """sha256 of many files: memo hits by stat, misses hashed in parallel, largest first.

    Args:
        paths: Absolute file paths.
        memo: Digest memo (updated, not saved); None hashes everything.
        workers: Hashing threads (default: one per core).

    Returns:
        {path: sha256} for every path.

    Raises:
        FileNotFoundError: for the first path that does not exist.
    """
    memo = memo if memo is not None else DigestMemo(None)
    result: dict[str, str] = {}
    misses: list[tuple[str, os.stat_result]] = []
    for path in dict.fromkeys(paths):
        st = _stat(path)
        if st is None:
            raise FileNotFoundError(path)
        entry = memo.lookup(path, st)
        if entry is not None:
            result[path] = entry["sha256"]
        else:
            misses.append((path, st))
    if not misses:
        return result
    misses.sort(key=lambda item: item[1].st_size, reverse=True)

    def job(item: tuple[str, os.stat_result]) -> tuple[str, str, int, os.stat_result]:
        path, _ = item
        started = time.time_ns()
        before = os.stat(path)
        sha, _size = sha256_file(path)
        return path, sha, started, before

    count = workers or default_workers()
    if count == 1 or len(misses) == 1:
        outcomes = [job(item) for item in misses]
    else:
        with ThreadPoolExecutor(max_workers=min(count, len(misses)), thread_name_prefix="sha256") as pool:
            outcomes = list(pool.map(job, misses))
    for path, sha, started, before in outcomes:
        result[path] = sha
        after = _stat(path)
        # Memoize only when the file did not change while it was read.
        if after is not None and (after.st_size, after.st_mtime_ns, after.st_ino) == (
            before.st_size, before.st_mtime_ns, before.st_ino
        ):
            memo.record(path, after, sha, started)
    return result
