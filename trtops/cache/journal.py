"""Deferred durability for pulled entries: a small fsynced journal instead of an fsync per file.

A fleet node's cache is a copy of the remote, so an entry lost to a power cut is cheap to
fetch again; what must never happen is that a half-written one is *served*. Forcing every
pulled byte to disk before the pull returns costs the disk's write bandwidth: on the 16-core
lab host, GETs written to files reach 4692 MB/s and fsyncing each file cuts that to 1845
(benchmarks/RESULTS.md). So ``trtops pull`` by default:

1. writes ``unsynced/<id>.json`` (the keys it is about to publish and this boot's id, from
   ``/proc/sys/kernel/random/boot_id``) and fsyncs it, before any entry becomes visible;
2. downloads, verifies and renames entries into place without fsyncs (the kernel writes
   them back within seconds);
3. leaves the journal behind. The next trtops command that opens the cache
   (:func:`recover`) then either

   - (same boot, journal older than :data:`SETTLE_SECONDS` and its pull no longer
     running) fsyncs the listed entries, cheap by then because writeback is long done,
     and drops the journal; or
   - (another boot: the machine went down in between) re-hashes every file of the listed
     entries against the sha256 in their meta.json, deletes those that do not match, and
     drops the journal.

A pull owns its journal by a lock, not by its pid: it holds ``flock`` on the journal
file from before the file appears until the pull ends (:func:`start`), and a journal is
retired only by whoever can take that lock. A pid says nothing in another PID namespace
(a second container on the same volume) or on another host sharing the filesystem; a lock
does (Linux NFS maps ``flock`` to byte-range locks the server arbitrates), and the kernel
drops it when the pull's process dies, however it dies.

Where no boot id can be read (not Linux), pulls fall back to an fsync per file.
Loaders emitted into ``--dest`` check the engine's sha256 before deserializing it anyway.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.errors import CacheError
from trtops.fsutil import FILE_MODE, flock_or_close, fsync_path
from trtops.keys.memo import sha256_file

log = logging.getLogger(__name__)

JOURNAL_DIR = "unsynced"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
# Linux writes dirty pages back after dirty_expire_centisecs (30 s by default); past twice
# that, the fsyncs that retire a journal find nothing left to write.
SETTLE_SECONDS = 60.0


def boot_id(path: str = BOOT_ID_PATH) -> str | None:
    """This boot's id (changes at every boot), or None where the system has none."""
    try:
        with open(path, encoding="ascii") as handle:
            value = handle.read().strip()
    except OSError:
        return None
    return value or None


class HeldJournal:
    """A journal file and the lock its pull holds on it (:func:`start`); :meth:`release`
    (or leaving the ``with`` block) gives the lock up, after which :func:`recover` may
    retire the journal."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> HeldJournal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def start(root: Path, keys: Iterable[str], boot: str) -> HeldJournal:
    """Record, durably, that ``keys`` are about to be published without fsyncs, and hold
    the journal's lock until :meth:`HeldJournal.release` (the end of the pull).

    The lock is taken on the file before it gets its final name, so no moment exists in
    which the journal is visible and unowned.

    Raises:
        OSError: the journal could not be written (the caller then must fsync instead).
    """
    import fcntl

    directory = root / JOURNAL_DIR
    directory.mkdir(parents=True, exist_ok=True)
    record = {"format": 1, "boot_id": boot, "created": time.time(), "pid": os.getpid(),
              "keys": sorted(set(keys))}
    name = uuid.uuid4().hex
    final = directory / f"{name}.json"
    # The temporary name starts with a dot: recover() never reads a half-written journal.
    temporary = directory / f".{name}.tmp"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
        os.rename(temporary, final)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    held = HeldJournal(final, fd)
    try:
        fsync_path(directory)
        fsync_path(root)
    except BaseException:
        held.release()
        raise
    return held


def begin(root: Path, keys: Iterable[str], boot: str) -> Path:
    """:func:`start` without holding the lock afterwards (a journal whose pull is over).

    Returns:
        The journal file (left in place: :func:`recover` retires it later).
    """
    with start(root, keys, boot) as held:
        return held.path


def _try_lock(path: Path) -> int | None:
    """A descriptor holding the journal's lock, or None while its pull holds it (or the
    file vanished). Read-write: NFS grants exclusive locks only to writers."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    return fd if flock_or_close(fd, fcntl.LOCK_EX | fcntl.LOCK_NB) else None


@dataclass
class Recovery:
    """What :func:`recover` did."""

    settled: int = 0  # journals of this boot retired after fsyncing their entries
    checked: list[str] = field(default_factory=list)  # entries re-hashed after a reboot
    removed: list[str] = field(default_factory=list)  # entries found damaged and deleted
    pending: int = 0  # journals still owned by their pull, or of this boot and too young


def _file_sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)[0]
    except OSError:
        return None


def entry_intact(entry_dir: Path) -> bool:
    """True when meta.json parses and every file it lists has the recorded sha256 (and the
    engine is among them); an optional file (build.log, which a pull leaves behind unless
    ``--with-logs``) may be absent, but not damaged."""
    from trtops.cache.entries import expected_digests
    from trtops.cache.store import ENGINE_FILE, META_FILE, OPTIONAL_FILES

    try:
        meta = json.loads((entry_dir / META_FILE).read_bytes())
        expected = expected_digests(meta)
    except (OSError, ValueError, TypeError, AttributeError):
        return False
    if ENGINE_FILE not in expected:
        return False
    return all(_file_sha256(entry_dir / name) == digest for name, digest in expected.items()
               if name not in OPTIONAL_FILES or os.path.lexists(entry_dir / name))


def _read_journal(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("keys"), list):
        return None
    return record


def recover(store: Any, *, now: float | None = None, current_boot: str | None = None,
            warn: Any = None) -> Recovery:
    """Retire the journals of earlier pulls in ``store`` (a LocalStore); see the module doc.

    Cheap when there is nothing to do (one failed ``scandir``). Runs under the store's
    ``unsynced`` lock, so two commands never check the same entries at once. A journal
    that cannot be parsed (torn by the crash before its own fsync finished) named entries
    that never became visible: it is dropped.

    Args:
        store: The local store (``root``, ``entry_dir``, ``delete_entry``, ``lock``).
        now: The current time (tests).
        current_boot: This boot's id (tests); read from the system when None.
        warn: Where to say which entries were removed (default: stderr).
    """
    result = Recovery()
    directory = Path(store.root) / JOURNAL_DIR
    try:
        names = sorted(item.name for item in os.scandir(directory)
                       if item.name.endswith(".json") and not item.name.startswith("."))
    except OSError:
        return result
    if not names:
        return result
    current_boot = current_boot or boot_id()
    now = time.time() if now is None else now
    try:
        _retire(store, directory, names, now, current_boot, result)
    except (OSError, CacheError) as exc:
        # A reader without write access (a serving account on a shared cache) cannot
        # retire journals; the next command of the cache's owner does. What it reads is
        # still checked against its sha256 before use.
        log.debug("left the pull journals in %s alone: %s", directory, exc)
        return result
    if result.removed:
        print(f"trtops: the machine restarted while {len(result.removed)} pulled cache "
              f"entr{'y was' if len(result.removed) == 1 else 'ies were'} still being written "
              f"to disk; removed the damaged one(s): "
              f"{', '.join(key[:12] for key in result.removed)} (pull them again)",
              file=warn or sys.stderr)
    return result


def _retire(store: Any, directory: Path, names: list[str], now: float,
            current_boot: str | None, result: Recovery) -> None:
    """Retire (or keep) each journal in ``names`` under the store's journal lock."""
    with store.lock(JOURNAL_DIR):
        for name in names:
            path = directory / name
            # A pull still running (here, in another PID namespace, on another host) holds
            # its journal's lock and keeps publishing entries the journal names: retiring
            # it under the pull would leave those entries unguarded.
            fd = _try_lock(path)
            if fd is None:
                if path.exists():
                    result.pending += 1
                continue
            try:
                _retire_one(store, path, now, current_boot, result)
            finally:
                os.close(fd)


def _retire_one(store: Any, path: Path, now: float, current_boot: str | None,
                result: Recovery) -> None:
    """Retire one journal whose lock this process holds (or count it as pending)."""
    record = _read_journal(path)
    if record is None:
        with contextlib.suppress(OSError):
            path.unlink()
        return
    keys = [key for key in record["keys"] if isinstance(key, str)]
    same_boot = current_boot is not None and record.get("boot_id") == current_boot
    if same_boot:
        if now - float(record.get("created", 0)) < SETTLE_SECONDS:
            result.pending += 1  # the kernel may still be writing its entries back
            return
        for key in keys:
            _fsync_entry(store.entry_dir(key))
        result.settled += 1
    else:
        for key in keys:
            entry = store.entry_dir(key)
            if not entry.exists():
                continue
            result.checked.append(key)
            if not entry_intact(entry):
                store.delete_entry(key)
                result.removed.append(key)
        fsync_path(Path(store.root))
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_entry(entry_dir: Path) -> None:
    try:
        names = os.listdir(entry_dir)
    except OSError:
        return
    for name in names:
        fsync_path(entry_dir / name)
    fsync_path(entry_dir)
    fsync_path(entry_dir.parent)


__all__ = [
    "BOOT_ID_PATH",
    "JOURNAL_DIR",
    "SETTLE_SECONDS",
    "HeldJournal",
    "Recovery",
    "begin",
    "boot_id",
    "entry_intact",
    "recover",
    "start",
]
