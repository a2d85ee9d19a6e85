"""Moving entries between a local cache and a remote one: push, fetch, pull selection,
timing caches, and byte-level progress.

Works with any two :class:`~trtops.cache.store.EntryStore` objects (a remote may also be a
shared directory). Guarantees:

- only *accepted* entries are pushed (rejected and unverified ones never are), and the
  local engine is checked against its recorded sha256 first, so corruption does not spread;
- remote writes are create-only: of racing pushers exactly one creates the entry and the
  others learn whether its engine is identical to theirs;
- every fetched file is verified against the sha256 in ``meta.json`` before it is renamed
  into place, and the local entry appears atomically (or not at all).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.cache import layout
from trtops.cache.compat import preference, runnable_here
from trtops.cache.local import timing_lock_name
from trtops.cache.store import ACCURACY_FILE, ENGINE_FILE, ENTRY_FILES, META_FILE, PutResult
from trtops.errors import CacheError, InputError, RemoteError

log = logging.getLogger("trtops.cache.sync")

DEFAULT_JOBS = 8
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
Progress = Callable[[int], None]


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    from trtops.keys.fingerprint import sha256_file

    return sha256_file(path)[0]


def _accuracy_state(store: Any, key: str) -> str:
    return _state_of(store.read_file(key, ACCURACY_FILE), store, key)


def _state_of(data: bytes | None, store: Any, key: str) -> str:
    """The state an entry's accuracy.json (as read from ``store``) gives it."""
    if data is None:
        return "unverified"
    try:
        parsed = json.loads(data)
    except ValueError:
        raise CacheError(f"accuracy.json of {key[:12]} in {store.url} is not valid JSON",
                         hint="re-run `trtops verify` for this engine") from None
    return layout.state_from_accuracy(parsed if isinstance(parsed, dict) else None)


def expected_digests(meta: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of each immutable file of an entry as recorded in its meta.json.

    Args:
        meta: The entry's meta.json.

    Returns:
        File name -> sha256 (always engine.plan when meta records it).
    """
    out: dict[str, str] = {}
    files = meta.get("files")
    if isinstance(files, Mapping):
        for name, info in files.items():
            if isinstance(info, Mapping) and isinstance(info.get("sha256"), str):
                out[str(name)] = info["sha256"]
    if isinstance(meta.get("engine_sha256"), str):
        out[ENGINE_FILE] = meta["engine_sha256"]
    return out


def meta_problem(key: str, meta: Any) -> str | None:
    """Why a remote entry's meta.json must not be trusted, or None when it is sound.

    A remote is shared: its meta.json decides which files are fetched, under which names,
    verified against which digests, and which loader names ``pull --dest`` writes. So it
    must be an object that names this key, whose key components hash to the key, whose
    engine sha256 is a digest, whose file names are plain names (no ``..``, no ``/``) and
    whose spec id is ``manifest/model/precision/target`` of safe segments.

    Args:
        key: The entry's key (from its location in the store).
        meta: The parsed meta.json.

    Returns:
        A reason, or None.
    """
    from trtops.keys.fingerprint import key_of

    if not isinstance(meta, Mapping):
        return "meta.json is not a JSON object"
    if meta.get("key") not in (None, key):
        return f"meta.json names another key ({str(meta.get('key'))[:70]!r})"
    components = meta.get("components")
    if components is not None:
        try:
            if not isinstance(components, Mapping) or key_of(dict(components)) != key:
                return "meta.json components do not hash to the entry key"
        except (TypeError, ValueError):
            return "meta.json components do not hash to the entry key"
    if not (isinstance(meta.get("engine_sha256"), str)
            and layout.KEY_RE.match(meta["engine_sha256"])):
        return "meta.json has no valid engine_sha256 (the engine could not be verified)"
    files = meta.get("files")
    if files is not None:
        if not isinstance(files, Mapping):
            return "meta.json 'files' is not an object"
        for name, info in files.items():
            try:
                layout.check_file_name(name)
            except ValueError:
                return f"meta.json lists a file name that is not allowed: {str(name)[:80]!r}"
            if not isinstance(info, Mapping):
                return f"meta.json describes {name!r} badly"
    spec_id = meta.get("spec_id")
    if spec_id is not None:
        try:
            segments = layout.ref_segments(spec_id)
        except InputError:
            segments = []
        # model, precision and target become module and directory names in `pull --dest`
        if len(segments) != 4 or not all(_IDENTIFIER_RE.fullmatch(s) for s in segments[1:]):
            return (f"meta.json spec_id {str(spec_id)[:80]!r} is not "
                    "manifest/model/precision/target")
    return None


def _check_meta(remote: Any, key: str, meta: Any) -> None:
    problem = meta_problem(key, meta)
    if problem:
        raise CacheError(f"refusing remote entry {key[:12]} in {remote.url}: {problem}",
                         hint="the remote entry is damaged or was not written by trtops; "
                              "delete it there and push it again")


def _entry_names(meta: Mapping[str, Any]) -> list[str]:
    """Files to copy for an entry: those meta.json lists, the engine, accuracy.json."""
    files = meta.get("files")
    names = set(files) if isinstance(files, Mapping) else set(ENTRY_FILES)
    names |= {ENGINE_FILE, ACCURACY_FILE}
    names.discard(META_FILE)
    return sorted(names, key=lambda n: (n != ENGINE_FILE, n))  # the big one first


def entry_size(meta: Mapping[str, Any]) -> int:
    """Bytes of an entry's immutable files according to meta.json (for progress totals)."""
    files = meta.get("files")
    if isinstance(files, Mapping):
        total = sum(int(info.get("size") or 0) for info in files.values()
                    if isinstance(info, Mapping))
        if total:
            return total
    return int(meta.get("engine_size") or 0)


def _local_entry_files(local: Any, key: str, workdir: Path) -> dict[str, Path]:
    """Paths of an entry's files: in place for a local cache, else copied to ``workdir``."""
    entry_dir = getattr(local, "entry_dir", None)
    list_files = getattr(local, "list_files", None)
    if entry_dir is not None and list_files is not None:
        base = Path(entry_dir(key))
        return {name: base / name for name in list_files(key) if name != META_FILE}
    out = {}
    for name in ENTRY_FILES:
        if name == META_FILE:
            continue
        if local.fetch_file(key, name, workdir / name):
            out[name] = workdir / name
    return out


def _fetch_one(remote: Any, key: str, name: str, dest: Path, expected: str | None,
               progress: Progress | None, fsync: bool,
               timings: dict[str, float] | None = None) -> bool:
    """Fetch one file, verified; True when present."""
    if getattr(remote, "verified_fetch", False):
        if timings is not None and getattr(remote, "fetch_timings", False):
            return remote.fetch_file(key, name, dest, expected_sha256=expected,
                                     progress=progress, fsync=fsync, timings=timings)
        return remote.fetch_file(key, name, dest, expected_sha256=expected, progress=progress,
                                 fsync=fsync)
    if not remote.fetch_file(key, name, dest):
        return False
    if progress:
        progress(dest.stat().st_size)
    if expected and _sha256(dest) != expected:
        dest.unlink()
        raise CacheError(
            f"sha256 mismatch for {name} of {key[:12]} in {remote.url}",
            hint="the remote copy is corrupt; delete it there (trtops gc) and push it again",
        )
    return True


def _staging_dir(local: Any, label: str) -> Path:
    """A temporary directory on the local cache's filesystem when it has one."""
    base = getattr(local, "tmp_dir", None)
    if base is not None:
        Path(base).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{label}.", dir=base))
    return Path(tempfile.mkdtemp(prefix=f"trtops-{label}."))


# --------------------------------------------------------------------------- push


def push_entry(local: Any, remote: Any, key: str, *, progress: Progress | None = None,
               states: Sequence[str] = ("accepted",)) -> PutResult:
    """Publish one local entry to the remote, create-only.

    Args:
        local: The local store holding the entry.
        remote: The remote store.
        key: Engine key.
        progress: Byte-count callback for uploads.
        states: Entry states that may be pushed (default only 'accepted'; 'rejected' is
            never pushed whatever is asked).

    Returns:
        PutResult: ``created`` when this call created the remote entry; otherwise
        ``identical`` says whether the remote engine has the same sha256 (a different one
        comes from a non-deterministic rebuild elsewhere; the remote one is kept).

    Raises:
        CacheError: no such local entry, not accepted, or the local files do not match
            their recorded sha256.
    """
    layout.check_key(key)
    meta = local.read_meta(key)
    if meta is None:
        raise CacheError(f"no complete entry {key[:12]} in {local.url}",
                         hint="list entries with `trtops status` or build it with `trtops apply`")
    state = _accuracy_state(local, key)
    if state == "rejected" or state not in states:
        raise CacheError(
            f"entry {key[:12]} ({meta.get('spec_id', '?')}) is {state}; only accepted entries "
            "are pushed",
            hint="run `trtops verify` for it" if state == "unverified" else
                 "rejected engines failed their accuracy check and stay local",
        )
    if remote.has_entry(key):
        return PutResult(created=False, identical=_remote_identical(remote, key, meta))
    workdir = Path(tempfile.mkdtemp(prefix="trtops-push."))
    try:
        files = _local_entry_files(local, key, workdir)
        if ENGINE_FILE not in files:
            raise CacheError(f"entry {key[:12]} in {local.url} has no engine.plan",
                             hint="run `trtops cache verify --delete` and rebuild it")
        expected = expected_digests(meta)
        digests: dict[str, str] = {}
        for name, path in files.items():
            if name in expected:
                digest = _sha256(path)
                if digest != expected[name]:
                    raise CacheError(
                        f"{name} of {key[:12]} in {local.url} does not match its recorded sha256",
                        hint="the local entry is corrupt; `trtops cache verify --delete`, then rebuild",
                    )
                digests[name] = digest
        if getattr(remote, "verified_fetch", False):  # S3Store: reuse digests, report bytes
            result = remote.put_entry(key, files, meta, progress=progress, digests=digests)
        else:
            result = remote.put_entry(key, files, meta)
            if progress:
                progress(sum(p.stat().st_size for p in files.values()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not result.created and not result.identical:
        log.warning("%s: the remote already has a different engine for %s (%s); kept the "
                    "remote one", remote.url, key[:12], meta.get("spec_id", "?"))
    return result


def _remote_identical(remote: Any, key: str, meta: Mapping[str, Any]) -> bool:
    theirs = remote.read_meta(key) or {}
    return bool(meta.get("engine_sha256")) and theirs.get("engine_sha256") == meta.get("engine_sha256")


# --------------------------------------------------------------------------- fetch


class PullTimings:
    """Where the time of a pull went, for benchmarks and diagnostics (thread-safe).

    ``seconds`` sums thread-seconds per phase over all workers (several run at once, so
    they add up to more than the wall time): ``list`` and ``metadata`` (selection: the
    listing, then meta.json and accuracy.json reads), ``request`` (until the response
    headers of each file), ``body`` (receiving, hashing and writing), ``fsync`` (of each
    downloaded file), ``copy`` (stores without timings of their own), ``publish`` (the
    local store making an entry of the staged files: meta.json, directory fsyncs, lock,
    rename). ``walls`` holds wall-clock spans: ``select``, ``transfer`` (from the start of
    :func:`pull_entries` until the last file of the last entry was downloaded) and
    ``publish_tail`` (from then until :func:`pull_entries` returned).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.walls: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        """Add thread-seconds to a phase."""
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def add_all(self, timings: Mapping[str, float]) -> None:
        """Add several phases at once (a store's per-file timings)."""
        with self._lock:
            for phase, seconds in timings.items():
                self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def wall(self, name: str, seconds: float) -> None:
        """Record a wall-clock span."""
        with self._lock:
            self.walls[name] = seconds


def _can_move(local: Any) -> bool:
    """True when the local store adopts staged files by renaming (LocalStore ``move=``)."""
    import inspect

    try:
        return "move" in inspect.signature(local.put_entry).parameters
    except (TypeError, ValueError):
        return False


@dataclass
class _Staged:
    """An entry's files downloaded and verified in a staging directory, not yet visible."""

    key: str
    meta: dict
    directory: Path
    files: dict[str, Path]
    adopt: bool  # the directory itself becomes the entry (LocalStore.adopt_entry)
    move: bool  # else: files renamed into the store's own staging (put_entry move=True)
    durable: bool = True  # False: nothing fsynced (the entry is in an unsynced journal)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)  # nothing left once adopted


def _write_staged(path: Path, data: bytes, fsync: bool) -> None:
    from trtops.cache.local import _write_bytes, write_error

    try:
        _write_bytes(path, data, fsync=fsync)
    except OSError as exc:
        raise write_error(exc, f"{path.name} of a pulled entry") from exc


def _stage_entry(remote: Any, local: Any, key: str, meta: dict, *,
                 progress: Progress | None = None, accuracy: bytes | None = None,
                 timings: PullTimings | None = None, durable: bool = True) -> _Staged:
    """Download and verify every file of an entry into a staging directory of the local
    store (fsynced when the store adopts the files as they are, unless ``durable`` is
    False: the entry is then in an unsynced journal, see :mod:`trtops.cache.journal`).

    The engine streams in this thread while the small files are fetched beside it, so
    they cost no round trips after it. ``accuracy`` (accuracy.json as read when the entry
    was selected) is written instead of fetched again.
    """
    expected = expected_digests(meta)
    new_staging = getattr(local, "new_staging", None)
    adopt = callable(new_staging) and callable(getattr(local, "adopt_entry", None))
    move = not adopt and _can_move(local)
    directory = (Path(new_staging(f"fetch-{key[:16]}")) if adopt
                 else _staging_dir(local, f"fetch-{key[:16]}"))
    # Files the store takes over by renaming must be on disk before they become visible;
    # a store that copies them fsyncs its own copy.
    fsync = (adopt or move) and durable
    staged = _Staged(key, meta, directory, {}, adopt, move, durable)
    try:
        def get(name: str) -> bool:
            target = directory / name
            if name == ACCURACY_FILE and accuracy is not None:
                _write_staged(target, accuracy, fsync)
                if progress:
                    progress(len(accuracy))
                return True
            started = time.perf_counter()
            file_timings: dict[str, float] = {}
            found = _fetch_one(remote, key, name, target, expected.get(name), progress,
                               fsync=fsync, timings=file_timings)
            if timings is not None:
                if file_timings:
                    timings.add_all(file_timings)
                else:
                    timings.add("copy", time.perf_counter() - started)
            return found

        names = _entry_names(meta)  # the engine first
        found: dict[str, bool] = {}
        if len(names) > 1:
            with ThreadPoolExecutor(max_workers=min(4, len(names) - 1),
                                    thread_name_prefix="trtops-pull-small") as helpers:
                others = {name: helpers.submit(get, name) for name in names[1:]}
                found[names[0]] = get(names[0])
                for name, future in others.items():
                    found[name] = future.result()
        elif names:
            found[names[0]] = get(names[0])
        for name in names:
            if found[name]:
                staged.files[name] = directory / name
            elif name == ENGINE_FILE or name in expected:
                raise CacheError(f"{name} of {key[:12]} is missing in {remote.url}",
                                 hint="the remote entry is incomplete; push it again")
    except BaseException:
        staged.discard()
        raise
    return staged


def _publish_staged(local: Any, staged: _Staged, timings: PullTimings | None = None) -> None:
    """Make the local entry of staged files (create-only, atomic); consumes the staging."""
    started = time.perf_counter()
    try:
        if staged.adopt:
            local.adopt_entry(staged.key, staged.directory, dict(staged.meta),
                              durable=staged.durable)
        elif staged.move:
            local.put_entry(staged.key, staged.files, dict(staged.meta), move=True)
        else:
            local.put_entry(staged.key, staged.files, dict(staged.meta))
    finally:
        staged.discard()
        if timings is not None:
            timings.add("publish", time.perf_counter() - started)


def fetch_entry(remote: Any, local: Any, key: str, *, progress: Progress | None = None,
                meta: Mapping[str, Any] | None = None, accuracy: bytes | None = None,
                timings: PullTimings | None = None) -> bool:
    """Copy one entry from the remote into the local cache, verified and atomic.

    Every file is checked against the sha256 in meta.json before the entry becomes
    visible: the files are downloaded (and fsynced) into a staging directory in the local
    cache's tmp/, then the local store writes meta.json last and renames the directory
    into place (create-only), so an interrupted fetch leaves no entry and no partial file
    behind.

    Args:
        remote: The remote store.
        local: The local store.
        key: Engine key.
        progress: Byte-count callback for downloads.
        meta: The remote entry's meta.json when already read (saves a request).
        accuracy: The remote entry's accuracy.json when already read (saves a request;
            :func:`select_for_pull` keeps the copy it judged the entry by).
        timings: Collects where the time went (see :class:`PullTimings`).

    Returns:
        True when the entry is now in the local cache (fetched or already there); False
        when the remote has no such entry.

    Raises:
        CacheError: a digest mismatch (nothing is written).
        RemoteError: the remote failed or became unreachable (nothing is written).
    """
    layout.check_key(key)
    if local.has_entry(key):
        return True
    if meta is None:
        meta = remote.read_meta(key)
        if meta is None:
            return False
    _check_meta(remote, key, meta)
    staged = _stage_entry(remote, local, key, dict(meta), progress=progress,
                          accuracy=accuracy, timings=timings)
    _publish_staged(local, staged, timings)
    return True


# --------------------------------------------------------------------------- timing caches


def fetch_timing_cache(remote: Any, local: Any, tensorrt: str, gpu_signature: str,
                       merge: Callable[[bytes, bytes], bytes] | None = None) -> bool:
    """Bring the remote timing cache into the local cache.

    Args:
        remote: The remote store.
        local: The local store.
        tensorrt: Full TensorRT version.
        gpu_signature: GPU signature (see :func:`trtops.keys.fingerprint.gpu_signature`).
        merge: ``merge(local_bytes, remote_bytes) -> bytes`` (the builder's TensorRT-based
            combine); without it an existing local cache is kept as is.

    Returns:
        True when the local timing cache changed.
    """
    data = remote.read_timing_cache(tensorrt, gpu_signature)
    return merge_timing_cache_into(local, tensorrt, gpu_signature, data, merge)


def push_timing_cache(local: Any, remote: Any, tensorrt: str, gpu_signature: str,
                      merge: Callable[[bytes, bytes], bytes] | None = None, *,
                      lock_timeout: float = 120.0) -> bool:
    """Publish the local timing cache, merged with the remote one under the remote's lock.

    Args:
        local: The local store.
        remote: The remote store.
        tensorrt: Full TensorRT version.
        gpu_signature: GPU signature.
        merge: ``merge(remote_bytes, local_bytes) -> bytes``; without it the local cache is
            uploaded only when the remote has none (never overwriting others' work).
        lock_timeout: Seconds to wait for the remote lock.

    Returns:
        True when the remote timing cache changed.
    """
    data = local.read_timing_cache(tensorrt, gpu_signature)
    return merge_timing_cache_into(remote, tensorrt, gpu_signature, data, merge,
                                   lock_timeout=lock_timeout)


def merge_timing_cache_into(store: Any, tensorrt: str, gpu_signature: str, data: bytes | None,
                            merge: Callable[[bytes, bytes], bytes] | None = None, *,
                            lock_timeout: float = 120.0) -> bool:
    """Bring serialized timing-cache bytes into a store's timing cache, under the store's
    lock (read, merge, write), so concurrent builders never lose each other's timings.

    Args:
        store: The store whose timing cache receives ``data``.
        tensorrt: Full TensorRT version.
        gpu_signature: GPU signature.
        data: The timing cache to bring in (nothing happens when empty).
        merge: ``merge(current, data) -> bytes`` (TensorRT's combine); without it an
            existing cache is never overwritten.
        lock_timeout: Seconds to wait for the store's lock.

    Returns:
        True when the store's timing cache changed.
    """
    if not data:
        return False
    with store.lock(timing_lock_name(tensorrt, gpu_signature), timeout=lock_timeout):
        current = store.read_timing_cache(tensorrt, gpu_signature)
        if current == data:
            return False
        if current is None:
            store.write_timing_cache(tensorrt, gpu_signature, data)
            return True
        if merge is None:
            return False
        merged = merge(current, data)
        if merged == current:
            return False
        store.write_timing_cache(tensorrt, gpu_signature, merged)
        return True


def list_timing_caches(store: Any) -> list[tuple[str, str]]:
    """(tensorrt, gpu_signature) of a local store's timing caches (empty for others)."""
    root = getattr(store, "root", None)
    if root is None:
        return []
    base = Path(root) / layout.TIMING_DIR
    found = []
    for path in sorted(base.glob("*/*.cache")):
        tensorrt, signature = path.parent.name, path.name[: -len(".cache")]
        try:
            layout.timing_path(tensorrt, signature)
        except Exception:  # noqa: BLE001 - stray files are not ours
            continue
        found.append((tensorrt, signature))
    return found


# --------------------------------------------------------------------------- progress


class TransferProgress:
    """Byte progress over many entries, safe from worker threads.

    In a terminal: one rich bar with size, speed and time left, and a line per finished
    entry. Elsewhere (CI, pipes): only a line per finished entry, so logs stay readable.
    """

    def __init__(self, total_bytes: int, total_items: int, title: str, *,
                 interactive: bool | None = None, quiet: bool = False) -> None:
        from trtops import console

        self.total_bytes = max(0, int(total_bytes))
        self.total_items = max(0, int(total_items))
        self.title = title
        self.quiet = quiet
        self.interactive = not quiet and (console.is_interactive() if interactive is None
                                          else interactive)
        self._lock = threading.Lock()
        self._done_items = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> TransferProgress:
        if self.interactive and self.total_items:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress as RichProgress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            from trtops import console

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=console.err(),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title, total=self.total_bytes or None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def advance(self, count: int) -> None:
        """``count`` more bytes moved (the callback given to transfers)."""
        if self._bar is not None:
            self._bar.update(self._task, advance=count)

    def item_done(self, label: str, message: str) -> None:
        """An entry finished; prints ``[i/n] label: message``."""
        if self.quiet:
            return
        with self._lock:
            self._done_items += 1
            width = len(str(self.total_items)) or 1
            line = f"[{self._done_items:>{width}}/{self.total_items}] {label}: {message}"
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            import sys

            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def human_bytes(count: float) -> str:
    """``52.4 MB`` style sizes (decimal units, like transfer speeds)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"  # pragma: no cover


# --------------------------------------------------------------------------- bulk push


@dataclass
class PushOutcome:
    key: str
    spec_id: str
    status: str  # created | exists | different | skipped | failed
    detail: str = ""
    size: int = 0


def push_entries(local: Any, remote: Any, keys: Iterable[str] | None = None, *,
                 jobs: int = DEFAULT_JOBS, progress: bool | None = None) -> list[PushOutcome]:
    """Push accepted local entries (all, or ``keys``) in parallel.

    Args:
        local: The local store.
        remote: The remote store.
        keys: Keys to push (default: every complete local entry).
        jobs: Entries in flight at once.
        progress: None: a bar in a terminal, a line per entry elsewhere; True: the bar;
            False: silent.

    Returns:
        One outcome per key: created, exists (identical), different (remote kept its own
        engine), skipped (not accepted) or failed (with the error message).
    """
    keys = list(local.list_keys() if keys is None else keys)
    candidates: list[tuple[str, dict]] = []
    outcomes: list[PushOutcome] = []
    for key in keys:
        layout.check_key(key)
        meta = local.read_meta(key)
        if meta is None:
            outcomes.append(PushOutcome(key, "?", "failed", f"no complete entry in {local.url}"))
            continue
        state = _accuracy_state(local, key)
        if state != "accepted":
            outcomes.append(PushOutcome(key, meta.get("spec_id", "?"), "skipped",
                                        f"{state}: only accepted entries are pushed"))
            continue
        candidates.append((key, meta))
    total = sum(entry_size(meta) for _, meta in candidates)
    with TransferProgress(total, len(candidates), "push", interactive=progress,
                          quiet=progress is False) as bar, \
            ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="trtops-push") as pool:

        gave_up: list[str] = []  # as in pull_entries: stop after the remote failed

        def one(item: tuple[str, dict]) -> PushOutcome:
            key, meta = item
            spec_id = meta.get("spec_id", "?")
            label = f"{spec_id} ({key[:12]})"
            if gave_up:
                bar.item_done(label, "not attempted: the remote failed")
                return PushOutcome(key, spec_id, "failed", f"not attempted: {gave_up[0]}")
            try:
                result = push_entry(local, remote, key, progress=bar.advance)
            except CacheError as exc:
                if isinstance(exc, RemoteError):
                    gave_up.append(exc.message)
                bar.item_done(label, f"failed: {exc.message}")
                return PushOutcome(key, spec_id, "failed", exc.message)
            if result.created:
                status, detail = "created", f"pushed {human_bytes(entry_size(meta))}"
            elif result.identical:
                status, detail = "exists", "already on the remote"
            else:
                status, detail = "different", "the remote has a different engine for this key; kept it"
            bar.item_done(label, detail)
            return PushOutcome(key, spec_id, status, detail, entry_size(meta))

        outcomes.extend(pool.map(one, candidates))
    return outcomes


# --------------------------------------------------------------------------- pull


@dataclass
class Candidate:
    """A remote entry considered for pulling."""

    key: str
    meta: dict
    reason: str | None = None  # why it is not pulled (None: selected)
    #: accuracy.json as read when judging the entry (written as is when it is pulled).
    accuracy: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def spec_id(self) -> str:
        return str(self.meta.get("spec_id") or "?")

    @property
    def created_at(self) -> float:
        return layout.parse_time(self.meta.get("created_at")) or 0.0

    @property
    def variant(self) -> str:
        """Identity of the engine apart from TensorRT and GPU: model, build, plugins."""
        from trtops.keys.fingerprint import sha256_json

        components = self.meta.get("components") or {}
        return sha256_json({name: components.get(name)
                            for name in ("schema", "model_digest", "build", "plugins")})


@dataclass
class PullSelection:
    selected: list[Candidate] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(entry_size(c.meta) for c in self.selected)


METADATA_JOBS = 16  # parallel metadata reads at least (when jobs > 1): small, latency-bound


def _parallel_map(function: Callable[[Any], Any], items: Sequence[Any], jobs: int) -> list[Any]:
    if len(items) <= 1 or jobs <= 1:
        return [function(item) for item in items]
    workers = min(max(jobs, METADATA_JOBS), len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trtops-meta") as pool:
        return list(pool.map(function, items))


def select_for_pull(remote: Any, platform: Any, *, spec_ids: Iterable[str] | None = None,
                    every: bool = False, jobs: int = DEFAULT_JOBS,
                    timings: PullTimings | None = None) -> PullSelection:
    """Choose the remote entries a machine should pull.

    An entry qualifies when it is accepted and :func:`trtops.cache.compat.runnable_here`
    allows it. Per logical engine (spec id) the newest build of the model/config wins (an
    older engine of stale weights is never chosen over a newer one), and among its entries
    the best match: this exact GPU model, then the same TensorRT version, then portable
    plans; ties go to the newest.

    Args:
        remote: The remote store.
        platform: The machine (:class:`trtops.keys.platform.Platform`).
        spec_ids: Only these logical engines (``manifest/model/precision/target``).
        every: Select every qualifying entry, not one per logical engine.
        jobs: Parallel metadata reads (at least :data:`METADATA_JOBS` unless 1: each is
            one small request, bound by latency).
        timings: Collects where the time went (see :class:`PullTimings`).

    Returns:
        Selected and skipped candidates (skipped ones carry a reason; selected ones keep
        the accuracy.json they were judged by, which :func:`pull_entries` writes as is).
    """
    started = time.perf_counter()
    wanted = set(spec_ids) if spec_ids is not None else None
    keys = list(remote.list_keys())
    listed = time.perf_counter()

    def read(key: str) -> tuple[Any, bytes | None]:
        """(meta.json or the CacheError reading it, accuracy.json when the entry could be
        pulled): one worker reads both, so selection costs one wave of requests."""
        try:
            meta = remote.read_meta(key)
        except RemoteError:
            raise
        except CacheError as exc:  # one unreadable entry must not stop the others
            return exc, None
        if (meta is None or meta_problem(key, meta) is not None
                or (wanted is not None and str(meta.get("spec_id") or "?") not in wanted)
                or runnable_here(meta, platform) is not None):
            return meta, None
        return meta, remote.read_file(key, ACCURACY_FILE)

    metas = _parallel_map(read, keys, jobs)
    if timings is not None:
        timings.add("list", listed - started)
        timings.add("metadata", time.perf_counter() - listed)
    selection = PullSelection()
    accepted: list[Candidate] = []
    for key, (meta, accuracy) in zip(keys, metas):
        if meta is None:
            continue  # deleted meanwhile
        problem = meta.message if isinstance(meta, CacheError) else meta_problem(key, meta)
        if problem:
            log.warning("%s: skipping entry %s: %s", remote.url, key[:12], problem)
            selection.skipped.append(Candidate(key, {}, reason=f"damaged: {problem}"))
            continue
        candidate = Candidate(key, meta)
        if wanted is not None and candidate.spec_id not in wanted:
            continue
        candidate.reason = runnable_here(meta, platform)
        if candidate.reason:
            selection.skipped.append(candidate)
            continue
        state = _state_of(accuracy, remote, key)
        if state != "accepted":
            candidate.reason = f"{state} (only accepted engines are pulled)"
            selection.skipped.append(candidate)
        else:
            candidate.accuracy = accuracy
            accepted.append(candidate)
    if timings is not None:
        timings.wall("select", time.perf_counter() - started)
    if every:
        selection.selected = sorted(accepted, key=lambda c: (c.spec_id, c.key))
        return selection
    groups: dict[str, list[Candidate]] = {}
    for candidate in accepted:
        groups.setdefault(candidate.spec_id, []).append(candidate)
    for spec_id in sorted(groups):
        group = groups[spec_id]
        newest: dict[str, float] = {}
        for candidate in group:
            newest[candidate.variant] = max(newest.get(candidate.variant, 0.0), candidate.created_at)
        best = min(group, key=lambda c: (-newest[c.variant], preference(c.meta, platform),
                                         -c.created_at, c.key))
        selection.selected.append(best)
        for candidate in group:
            if candidate is not best:
                candidate.reason = (f"{best.key[:12]} is preferred for {spec_id}")
                selection.skipped.append(candidate)
    return selection


@dataclass
class PullOutcome:
    key: str
    spec_id: str
    status: str  # fetched | present | failed
    detail: str = ""
    size: int = 0


def _deferred_durability(local: Any, keys: Sequence[str]) -> bool:
    """Journal ``keys`` so they can be published without fsyncs; False when this store or
    system cannot (then every file is fsynced as before)."""
    from trtops.cache import journal

    if not keys or not callable(getattr(local, "adopt_entry", None)) \
            or not callable(getattr(local, "recover_unsynced", None)):
        return False
    boot = journal.boot_id()
    if boot is None:
        return False
    try:
        journal.begin(Path(local.root), keys, boot)
    except OSError:
        return False  # a full or read-only disk: the fsyncing path reports it properly
    return True


def pull_entries(remote: Any, local: Any, candidates: Sequence[Candidate], *,
                 jobs: int = DEFAULT_JOBS, progress: bool | None = None,
                 timings: PullTimings | None = None, fsync: bool = False) -> list[PullOutcome]:
    """Fetch selected entries into the local cache in parallel (verified, atomic).

    Two stages: ``jobs`` workers download (and verify) the files of one entry each into a
    staging directory; other workers then make the local entries of them (meta.json,
    rename), so a download slot never waits for that and the next entry starts at once.

    Durability: by default the keys are first written to an fsynced journal and the
    entries are published without fsyncs; the next command that opens the cache retires
    the journal, and after a reboot re-hashes those entries and deletes damaged ones (see
    :mod:`trtops.cache.journal`). With ``fsync`` (or where the journal is not possible),
    every file and directory is fsynced before its entry becomes visible.

    Args:
        remote: The remote store.
        local: The local store.
        candidates: From :func:`select_for_pull`.
        jobs: Entries in flight at once.
        progress: None: a bar in a terminal, a line per entry elsewhere; True: the bar;
            False: silent.
        timings: Collects where the time went (see :class:`PullTimings`).
        fsync: Make every entry durable before it becomes visible instead of journaling.

    Returns:
        One outcome per candidate: fetched, present (was already local) or failed.
    """
    begun = time.perf_counter()
    todo = [c for c in candidates if not local.has_entry(c.key)]
    durable = fsync or not _deferred_durability(local, [c.key for c in todo])
    outcomes = [PullOutcome(c.key, c.spec_id, "present", "already in the local cache")
                for c in candidates if c not in todo]
    total = sum(entry_size(c.meta) for c in todo)
    transferred = [begun]  # when the last download ended
    clock = threading.Lock()
    # Leaving the block, the download pool is shut down (waited for) before the publish
    # pool, so every staged entry still finds a publisher.
    with TransferProgress(total, len(todo), "pull", interactive=progress,
                          quiet=progress is False) as bar, \
            ThreadPoolExecutor(max_workers=max(1, jobs),
                               thread_name_prefix="trtops-publish") as publishers, \
            ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="trtops-pull") as pool:

        # After the remote failed (unreachable after retries), entries not yet started
        # fail at once instead of each waiting through its own retries.
        gave_up: list[str] = []

        def failed(candidate: Candidate, label: str, exc: CacheError) -> PullOutcome:
            bar.item_done(label, f"failed: {exc.message}")
            return PullOutcome(candidate.key, candidate.spec_id, "failed", exc.message)

        def publish(candidate: Candidate, staged: _Staged, label: str,
                    started: float) -> PullOutcome:
            try:
                _publish_staged(local, staged, timings)
            except CacheError as exc:
                return failed(candidate, label, exc)
            size = entry_size(candidate.meta)
            seconds = time.monotonic() - started
            bar.item_done(label, f"pulled {human_bytes(size)} ({seconds:.1f}s)")
            return PullOutcome(candidate.key, candidate.spec_id, "fetched", "", size)

        def one(candidate: Candidate) -> PullOutcome | Future:
            label = f"{candidate.spec_id} ({candidate.key[:12]})"
            started = time.monotonic()
            if gave_up:
                bar.item_done(label, "not attempted: the remote failed")
                return PullOutcome(candidate.key, candidate.spec_id, "failed",
                                   f"not attempted: {gave_up[0]}")
            try:
                if local.has_entry(candidate.key):  # another process pulled it meanwhile
                    staged = None
                else:
                    _check_meta(remote, candidate.key, candidate.meta)
                    staged = _stage_entry(remote, local, candidate.key, dict(candidate.meta),
                                          progress=bar.advance, accuracy=candidate.accuracy,
                                          timings=timings, durable=durable)
            except CacheError as exc:
                if isinstance(exc, RemoteError):
                    gave_up.append(exc.message)
                return failed(candidate, label, exc)
            finally:
                with clock:
                    transferred[0] = max(transferred[0], time.perf_counter())
            if staged is None:
                bar.item_done(label, "already in the local cache")
                return PullOutcome(candidate.key, candidate.spec_id, "present",
                                   "already in the local cache")
            return publishers.submit(publish, candidate, staged, label, started)

        for result in pool.map(one, todo):
            outcomes.append(result.result() if isinstance(result, Future) else result)
    if timings is not None:
        ended = time.perf_counter()
        timings.wall("transfer", transferred[0] - begun)
        timings.wall("publish_tail", ended - transferred[0])
    return outcomes


__all__ = [
    "Candidate", "PullOutcome", "PullSelection", "PullTimings", "PushOutcome", "TransferProgress",
    "entry_size", "expected_digests", "fetch_entry", "fetch_timing_cache", "human_bytes",
    "list_timing_caches", "meta_problem", "pull_entries", "push_entries", "push_entry",
    "push_timing_cache", "select_for_pull",
]
