"""The lockfile verbs: ``trtops lock`` (write or update it from the cache or a remote),
``plan --check-lock`` (do the manifests still give the locked keys?), what ``apply``
records in it, and which locked engines ``pull --locked`` fetches here.

The lock's model and file format live in :mod:`trtops.lockfile`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.errors import CacheError, InputError, RemoteError
from trtops.lockfile import (
    Lock,
    LockEntry,
    LockPlatform,
    LockSection,
    in_scope,
    manifest_scope,
    write_section,
)

log = logging.getLogger("trtops.ops.lock")

METADATA_JOBS = 16  # parallel meta.json reads of a remote (small, latency-bound)


def keys_on(specs: Sequence[Any], platform: LockPlatform, memo: Any) -> dict[str, Any]:
    """The engine keys the manifests give on a lock platform (by spec id; specs that
    platform does not build are absent)."""
    from trtops.plan import spec_keys

    return spec_keys(specs, platform.as_platform(), memo).keys


# --------------------------------------------------------------------------- trtops lock


@dataclass
class Found:
    """A cache entry some manifest engine may lock: its meta.json and accuracy verdict."""

    meta: dict
    accuracy: dict | None
    perf: dict | None = None  # its perf.json


def scan_entries(stores: Sequence[Any], spec_ids: set[str]) -> dict[str, Found]:
    """Entries of ``spec_ids`` in the stores (the first store that has a key wins), by key.
    Damaged entries are skipped with a warning, as pull does."""
    from trtops.cache.entries import meta_problem, read_accuracy, read_perf

    found: dict[str, Found] = {}
    for store in stores:
        keys = [k for k in store.list_keys() if k not in found]

        def read(key: str, store: Any = store) -> Found | None:
            try:
                meta = store.read_meta(key)
                if meta is None or meta_problem(key, meta) or meta.get("spec_id") not in spec_ids:
                    return None
                return Found(meta, read_accuracy(store, key), read_perf(store, key))
            except RemoteError:
                raise
            except CacheError as exc:
                log.warning("%s: skipping entry %s: %s", store.url, key[:12], exc.message)
                return None

        workers = max(1, min(METADATA_JOBS, len(keys)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trtops-lock") as pool:
            for key, entry in zip(keys, pool.map(read, keys)):
                if entry is not None:
                    found[key] = entry
    return found


@dataclass
class LockUpdate:
    """What ``trtops lock`` changed, per platform file."""

    written: list[Path] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # platform signatures whose file went
    changed: list[dict[str, Any]] = field(default_factory=list)  # {"engine", "platform", "key", "state"}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # signature -> state -> n


def update_lock(specs: Sequence[Any], lock: Lock, stores: Sequence[Any], memo: Any, *,
                platforms: Iterable[LockPlatform] = ()) -> LockUpdate:
    """Write the lock of ``specs``: for every platform the lock already has, every platform
    an entry of these manifests was built on and every platform in ``platforms``, the key
    the manifests give each engine there, with the built entry's sha256, size and verdict
    when a store holds it ("pending" otherwise).

    Engines of manifests not in ``specs`` are left as they are; engines of these manifests
    that are gone, or no longer built on a platform, are dropped.

    Args:
        specs: The manifests' engine specs.
        lock: The lock as read (``missing_ok``); updated in place and written.
        stores: Where built entries are looked up (first wins).
        memo: Digest memo for hashing models.
        platforms: Further platforms to lock (``--platform``): their engines start pending.

    Returns:
        A :class:`LockUpdate`.
    """
    scope = manifest_scope(specs)
    found = scan_entries(stores, {spec.id for spec in specs})
    targets: dict[str, LockPlatform] = {s: sec.platform for s, sec in lock.sections.items()}
    for platform in platforms:
        targets.setdefault(platform.signature, platform)
    keyed = {signature: keys_on(specs, platform, memo) for signature, platform in targets.items()}
    for entry in found.values():
        platform = LockPlatform.from_meta(entry.meta)
        if platform is None or platform.signature in targets:
            continue
        keys = keys_on(specs, platform, memo)
        # Only a platform where a current engine was built: stale builds (an older
        # TensorRT, old weights) do not bring their platform back into the lock.
        if any(k.key in found for k in keys.values()):
            targets[platform.signature], keyed[platform.signature] = platform, keys
    update = LockUpdate()
    for signature in sorted(targets):
        platform = targets[signature]
        old = lock.sections.get(signature) or LockSection(platform)
        engines = {i: e for i, e in old.engines.items() if not in_scope(i, scope)}
        for spec_id, engine_key in keyed[signature].items():
            hit = found.get(engine_key.key)
            before = old.engines.get(spec_id)
            if hit is not None:
                from trtops.perf.document import perf_summary

                kept = (before.performance or {}).get("selected") \
                    if before is not None and before.key == engine_key.key else None
                entry = LockEntry.from_meta(hit.meta, hit.accuracy, performance=lock_performance(
                    perf_summary(hit.perf), kept))
            elif before is not None and before.key == engine_key.key:
                entry = before
            else:
                entry = LockEntry.pending(engine_key)
            engines[spec_id] = entry
            if before is None or before.to_json() != entry.to_json():
                update.changed.append({"engine": spec_id, "platform": signature,
                                       "key": entry.key, "state": entry.state})
        section = LockSection(platform, engines)
        counts: dict[str, int] = {}
        for entry in engines.values():
            counts[entry.state] = counts.get(entry.state, 0) + 1
        update.counts[signature] = counts
        path = write_section(lock.path, section)
        if path is None:
            if lock.sections.pop(signature, None) is not None:
                update.removed.append(signature)
        else:
            lock.sections[signature] = section
            update.written.append(path)
    return update


# --------------------------------------------------------------------------- apply


APPLIED_STATUSES = ("built", "reused", "downloaded", "rejected", "accuracy_failed",
                    "perf_failed", "benched")


@dataclass
class LockRun:
    """``trtops lock``: the lock updated, what changed, and the caches searched."""

    lock: Lock
    update: LockUpdate
    store_urls: list[str]


def lock_manifests(paths: Sequence[str], cache_url: str, *, remote_url: str | None = None,
                   lockfile: str | None = None, platform: Any | None = None) -> LockRun:
    """Read the manifests and their lock (``lockfile``, else ``trtops.lock`` beside them;
    created when missing) and record in it the engines built in the remote (when given)
    or the local cache, on the lock's platforms and ``platform`` (see :func:`update_lock`)."""
    from trtops.cache import open_store
    from trtops.lockfile import lock_path_for, read_lock
    from trtops.plan import load_specs, memo_for

    store = open_store(cache_url)
    specs = load_specs(paths, check_models=False, cache_dir=getattr(store, "root", None))
    lock = read_lock(lock_path_for(paths, lockfile), missing_ok=True)
    stores = ([open_store(remote_url)] if remote_url else []) + [store]
    update = update_lock(specs, lock, stores, memo_for(store),
                         platforms=[platform] if platform else [])
    return LockRun(lock, update, [s.url for s in stores])


def lock_performance(summary: dict | None, selection: dict | None = None) -> dict | None:
    """What the lock keeps of an engine's measurement: the opt case's numbers, every case's
    median and spread (the next build's baseline when the cache is gone, as in CI), the
    verdict and, for ``select: fastest`` models, whether this precision was chosen."""
    if not summary and not selection:
        return None
    out: dict = {}
    if summary:
        out = {name: summary[name] for name in ("state", "gpu", "measured_at", "case",
                                                "latency_ms", "throughput", "cv", "cases")
               if summary.get(name) is not None}
    if selection:
        out["selected"] = selection
    return _rounded(out)


def _rounded(value: Any) -> Any:
    """Numbers to 4 significant digits: a lock is reviewed in diffs, and the noise of the
    last digits says nothing."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def record_applied(lock_path: Path, plan: Any, result: Any, store: Any) -> list[Path]:
    """Put what an ``apply`` run built, reused or fetched into the lock (its key, sha256,
    size and verdict, rejected ones included), in the file of the platform that built it.
    Only an existing lock is updated: ``trtops lock`` creates one.

    Returns:
        The platform files written.
    """
    from trtops.cache.entries import read_accuracy
    from trtops.lockfile import read_lock

    selections = getattr(result, "selected", None) or {}
    if not lock_path.is_dir():
        return []
    lock = read_lock(lock_path)
    fallback = LockPlatform.from_platform(plan.platform)
    touched: set[str] = set()
    for outcome in result.outcomes:
        if outcome.status not in APPLIED_STATUSES or not outcome.key:
            continue
        meta = store.read_meta(outcome.key)
        if meta is None:
            continue
        platform = LockPlatform.from_meta(meta) or fallback
        if platform is None:
            continue
        entry = LockEntry.from_meta(meta, read_accuracy(store, outcome.key),
                                    performance=lock_performance(outcome.perf,
                                                                 selections.get(outcome.id)))
        lock.section(platform).engines[outcome.id] = entry
        touched.add(platform.signature)
    return [path for signature in sorted(touched)
            if (path := write_section(lock_path, lock.sections[signature])) is not None]


# --------------------------------------------------------------------------- plan --check-lock


@dataclass(frozen=True)
class LockDrift:
    """One engine whose key in the manifests differs from the lock."""

    engine: str
    platform: str  # platform signature
    kind: str  # changed | new | removed | not_built_here | no_section
    message: str
    changes: tuple[Any, ...] = ()  # trtops.plan.Change, for kind == "changed"

    def render(self) -> str:
        return f"{self.engine} on {self.platform}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "platform": self.platform, "kind": self.kind,
                "message": self.message, "changes": [c.to_json() for c in self.changes]}


def _compare(specs: Sequence[Any], section: LockSection, platform: LockPlatform,
             memo: Any) -> list[LockDrift]:
    from trtops.plan import explain_changes, match_target

    scope = manifest_scope(specs)
    by_id = {spec.id: spec for spec in specs}
    keys = keys_on(specs, platform, memo)
    locked = {i: e for i, e in section.engines.items() if in_scope(i, scope)}
    drifts = []
    for spec_id, engine_key in keys.items():
        entry = locked.get(spec_id)
        if entry is None:
            drifts.append(LockDrift(spec_id, platform.signature, "new",
                                    "not in the lock (a new engine)"))
        elif entry.key != engine_key.key:
            changes = tuple(explain_changes(entry.components, engine_key.components,
                                            entry.model, engine_key.model))
            text = "; ".join(c.message for c in changes) or "key changed"
            drifts.append(LockDrift(spec_id, platform.signature, "changed",
                                    f"{entry.key[:12]} → {engine_key.key[:12]}: {text}", changes))
    for spec_id in sorted(set(locked) - set(keys)):
        spec = by_id.get(spec_id)
        if spec is None:
            drifts.append(LockDrift(spec_id, platform.signature, "removed",
                                    "locked, but no longer in the manifests"))
        else:
            reason = match_target(spec, platform.as_platform()).problem or "not built there"
            drifts.append(LockDrift(spec_id, platform.signature, "not_built_here",
                                    f"locked, but the manifests no longer build it there ({reason})"))
    return drifts


def check_lock(specs: Sequence[Any], lock: Lock, memo: Any, *,
               platform: Any | None = None) -> list[LockDrift]:
    """What differs between the manifests' keys and the lock.

    Args:
        specs: The manifests' engine specs (only their manifests' engines are compared).
        lock: The lock.
        memo: Digest memo for hashing models.
        platform: Check only this platform (``--platform``...), against its own file or,
            when it has none, the file of the same GPU (so a TensorRT upgrade reads
            "TensorRT 10.13.3.9 → 10.14.1.48"); None: every platform file, each against
            the platform it records.

    Returns:
        The differences, empty when the lock matches.
    """
    if platform is None:
        drifts = []
        for signature in sorted(lock.sections):
            section = lock.sections[signature]
            drifts += _compare(specs, section, section.platform, memo)
        return drifts
    here = LockPlatform.from_platform(platform)
    if here is None:
        raise InputError("--check-lock with a platform needs its TensorRT version and GPU",
                         hint="pass --platform FILE, or --tensorrt, --gpu and --compute-capability")
    section = lock.sections.get(here.signature)
    if section is None:
        gpu = here.signature.rsplit("-trt", 1)[0]
        same_gpu = [s for sig, s in sorted(lock.sections.items()) if sig.rsplit("-trt", 1)[0] == gpu]
        if not same_gpu:
            return [LockDrift("*", here.signature, "no_section",
                              "the lock has no engines for this platform")]
        section = same_gpu[-1]
    return _compare(specs, section, here, memo)


@dataclass
class LockCheck:
    """``plan --check-lock``: the lock read and each engine that differs from it."""

    lock: Lock
    drifts: list[LockDrift]

    @property
    def engine_count(self) -> int:
        return sum(len(s.engines) for s in self.lock.sections.values())

    def mismatch(self) -> InputError | None:
        """The error to exit with when the manifests differ from the lock, else None."""
        if not self.drifts:
            return None
        return InputError(
            f"the manifests do not match {self.lock.path}: {len(self.drifts)} engine(s) differ",
            hint="update the lock in this change: `trtops lock` (keys of unbuilt engines are "
                 "locked as pending; `apply` fills them in)")


def check_manifests_against_lock(paths: Sequence[str], store: Any, *, lockfile: str | None = None,
                                 platform: Any | None = None) -> LockCheck:
    """Read the manifests (models are not checked) and their lock (``lockfile``, else
    ``trtops.lock`` beside them) and compare their keys (see :func:`check_lock`)."""
    from trtops.lockfile import lock_path_for, read_lock
    from trtops.plan import load_specs, memo_for

    cache_dir = getattr(store, "root", None)
    specs = load_specs(paths, check_models=False, cache_dir=cache_dir)
    lock = read_lock(lock_path_for(paths, lockfile))
    return LockCheck(lock, check_lock(specs, lock, memo_for(store), platform=platform))


# --------------------------------------------------------------------------- pull --locked


@dataclass
class LockedChoice:
    """The locked engine a node runs for one engine id."""

    engine: str
    section: LockSection
    entry: LockEntry


def select_locked(lock: Lock, platform: Any, specs: Sequence[Any] = ()) -> list[LockedChoice]:
    """The locked engines that run on ``platform``, one per engine id (exact GPU and
    TensorRT first, as pull prefers), only those of ``specs``' manifests when given.

    Raises:
        InputError: the lock covers no engine for this platform, or an engine of ``specs``
            meant for this platform (its target matches) has no locked engine that runs
            here, or a chosen engine is not built yet or not accepted.
    """
    from trtops.cache.compat import preference, runnable_here
    from trtops.plan import match_target

    scope = manifest_scope(specs) if specs else None
    candidates: dict[str, list[tuple[LockSection, LockEntry]]] = {}
    for section, spec_id, entry in lock.entries():
        if not in_scope(spec_id, scope):
            continue
        if runnable_here(entry.as_meta(section.platform), platform) is None:
            candidates.setdefault(spec_id, []).append((section, entry))
    describe = platform.describe() if hasattr(platform, "describe") else str(platform)
    covered = ", ".join(sorted(lock.sections)) or "none"
    if not candidates:
        raise InputError(
            f"the lock {lock.path} covers no engine for this platform ({describe}); "
            f"it locks: {covered}",
            hint="build the engines on this GPU type and TensorRT (`trtops apply` there "
                 "updates the lock), or deploy to a platform the lock covers")
    wanted = [s.id for s in specs if match_target(s, platform).problem is None]
    missing = sorted(set(wanted) - set(candidates))
    if missing:
        raise InputError(
            f"the lock {lock.path} has no engine for {', '.join(missing)} that runs here "
            f"({describe}); it locks: {covered}",
            hint="build them on this GPU type and TensorRT and update the lock")
    chosen = []
    for spec_id in sorted(candidates):
        section, entry = min(candidates[spec_id], key=lambda c: (
            preference(c[1].as_meta(c[0].platform), platform), c[0].platform.signature))
        chosen.append(LockedChoice(spec_id, section, entry))
    unusable = [c for c in chosen if c.entry.state != "accepted"]
    if unusable:
        raise InputError(
            "locked engines that cannot be deployed: " + "; ".join(
                f"{c.engine} is {c.entry.state}"
                + (" (not built yet)" if c.entry.state == "pending" else "")
                for c in unusable),
            hint="only accepted engines are pulled: build them (`trtops apply`) and update "
                 "the lock, or revert the lock to a release whose engines passed")
    return chosen


def locked_candidates(remote: Any, chosen: Sequence[LockedChoice]) -> list[Any]:
    """The remote entries of the chosen locked engines, checked against the lock before
    anything is downloaded: present, sound, accepted, and with exactly the locked engine
    sha256 and size (downloads are then verified against that sha256).

    Raises:
        CacheError: naming every locked engine that the remote lacks or that differs.
    """
    from trtops.cache.entries import meta_problem, parse_perf, state_of_accuracy
    from trtops.cache.store import ACCURACY_FILE, PERF_FILE
    from trtops.ops.pull import Candidate

    def read(choice: LockedChoice) -> tuple[Any, tuple[bytes | None, bytes | None]]:
        try:
            meta = remote.read_meta(choice.entry.key)
        except RemoteError:
            raise
        except CacheError as exc:
            return exc, (None, None)
        if not meta:
            return meta, (None, None)
        key = choice.entry.key
        return meta, (remote.read_file(key, ACCURACY_FILE), remote.read_file(key, PERF_FILE))

    workers = max(1, min(METADATA_JOBS, len(chosen)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trtops-meta") as pool:
        read_back = list(pool.map(read, chosen))
    problems, candidates = [], []
    for choice, (meta, (accuracy, perf)) in zip(chosen, read_back):
        key, entry = choice.entry.key, choice.entry
        label = f"{choice.engine} ({key[:12]})"
        if isinstance(meta, CacheError):
            problems.append(f"{label}: {meta.message}")
            continue
        if meta is None:
            problems.append(f"{label}: not on the remote (removed by gc?)")
            continue
        problem = meta_problem(key, meta)
        if problem is None and (meta.get("engine_sha256") != entry.sha256
                                or meta.get("engine_size") != (entry.engine or {}).get("size")):
            problem = (f"the remote engine is not the locked one (sha256 "
                       f"{str(meta.get('engine_sha256'))[:12]}..., the lock says "
                       f"{str(entry.sha256)[:12]}...)")
        if problem is None:
            try:
                state = state_of_accuracy(accuracy, key)
                parse_perf(perf, key)
            except CacheError as exc:
                state = exc.message
            if state != "accepted":
                problem = f"{state} on the remote"
        if problem:
            problems.append(f"{label}: {problem}")
            continue
        candidate = Candidate(key, dict(meta), accuracy=accuracy, perf=perf)
        candidates.append(candidate)
    if problems:
        raise CacheError(
            f"refusing to pull from {remote.url}: " + "; ".join(problems),
            hint="nothing was downloaded; push the locked engines again from a cache that "
                 "has them, or deploy a lock whose engines the remote holds")
    return candidates


def check_local_against_lock(local: Any, chosen: Sequence[LockedChoice]) -> list[str]:
    """Locked engines whose local entry records another engine sha256 (a local cache that
    was tampered with): reasons, empty when every present entry matches."""
    out = []
    for choice in chosen:
        meta = local.read_meta(choice.entry.key) if local.has_entry(choice.entry.key) else None
        if meta is not None and meta.get("engine_sha256") != choice.entry.sha256:
            out.append(f"{choice.engine}: the local entry {choice.entry.key[:12]} is not the "
                       "locked engine")
    return out


def pull_locked(remote: Any, local: Any, platform: Any, lock: Any, *, specs: Sequence[Any] = (),
                jobs: int = 8, fsync: bool = False, dry_run: bool = False,
                dest: str | Path | None = None, loaders: str | None = None,
                progress: bool | None = None, with_logs: bool = False) -> Any:
    """``pull --locked``: fetch exactly the engines the lock names for this platform, each
    checked against the lock's sha256 before anything is downloaded (and the download
    verified against it), then refs and loaders as :func:`trtops.ops.pull.pull` does.

    Args:
        remote: The remote store.
        local: The local store.
        platform: The machine.
        lock: A :class:`trtops.lockfile.Lock`.
        specs: Only these manifests' engines (empty: every engine of the lock).
        jobs, fsync, dry_run, dest, loaders, progress, with_logs: As for
            :func:`trtops.ops.pull.pull`.

    Returns:
        A :class:`PullResult` (nothing is missing: what the lock lacks is an error).

    Raises:
        InputError: the lock does not cover this platform, or names engines that cannot
            be deployed (see :func:`trtops.ops.lock.select_locked`).
        CacheError: the remote lacks a locked engine or holds another one under its key.
    """
    from trtops.ops.pull import PullResult, PullSelection, fetch_and_emit

    chosen = select_locked(lock, platform, specs)
    tampered = check_local_against_lock(local, chosen)
    if tampered:
        raise CacheError("the local cache does not match the lock: " + "; ".join(tampered),
                         hint="run `trtops cache verify --delete` and pull again")
    selection = PullSelection(selected=locked_candidates(remote, chosen))
    result = PullResult(selection, [])
    if not dry_run:
        fetch_and_emit(remote, local, platform, result, {s.id: s for s in specs}, jobs=jobs,
                        fsync=fsync, dest=dest, loaders=loaders, progress=progress,
                        with_logs=with_logs)
    return result


__all__ = [
    "LockDrift", "LockUpdate", "LockedChoice", "check_local_against_lock", "check_lock",
    "keys_on", "locked_candidates", "pull_locked", "record_applied", "scan_entries", "select_locked",
    "update_lock",
]
