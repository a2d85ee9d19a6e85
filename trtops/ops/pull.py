"""`trtops pull`: fetch the engines this machine can run from a remote cache.

A fleet node asks the remote cache for accepted entries that its own GPU and TensorRT can
run (exact matches, and hardware- or version-compatible engines where the rules allow, see
:mod:`trtops.cache.compat`), one per logical engine (or every one), downloads them in
parallel, verifies every sha256 before anything is renamed into place (see
:func:`trtops.cache.transfer.stage_entry`), and stores them in the local cache atomically.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.cache import layout
from trtops.cache.compat import preference, runnable_here
from trtops.cache.entries import (
    check_meta,
    entry_size,
    meta_problem,
    parse_perf,
    state_of_accuracy,
)
from trtops.cache.store import ACCURACY_FILE, PERF_FILE
from trtops.cache.transfer import PullTimings, Staged, publish_staged, stage_entry
from trtops.errors import CacheError, RemoteError
from trtops.names import format_bytes
from trtops.ops.progress import TransferProgress

log = logging.getLogger("trtops.ops.pull")

DEFAULT_JOBS = 8


@dataclass
class Candidate:
    """A remote entry considered for pulling."""

    key: str
    meta: dict
    reason: str | None = None  # why it is not pulled (None: selected)
    #: accuracy.json as read when judging the entry (written as is when it is pulled).
    accuracy: bytes | None = field(default=None, repr=False, compare=False)
    #: perf.json as read when judging the entry (checked, written as is; None: none).
    perf: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def spec_id(self) -> str:
        return str(self.meta.get("spec_id") or "?")

    @property
    def created_at(self) -> float:
        return layout.parse_time(self.meta.get("created_at")) or 0.0

    @property
    def variant(self) -> str:
        """Identity of the engine apart from TensorRT and GPU: model, build, plugins."""
        from trtops.keys.canonical import sha256_json

        components = self.meta.get("components") or {}
        identity = {name: components.get(name) for name in ("schema", "model_digest", "build", "plugins")}
        if components.get("prepare") is not None:  # absent for models built as they are
            identity["prepare"] = components["prepare"]
        return sha256_json(identity)


@dataclass
class PullSelection:
    selected: list[Candidate] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(entry_size(c.meta) for c in self.selected)

    @property
    def damaged(self) -> list[Candidate]:
        """Skipped because their metadata is not what trtops writes (hostile or broken)."""
        return [c for c in self.skipped if (c.reason or "").startswith(DAMAGED)]



DAMAGED = "damaged: "  # the reason prefix of entries refused for their metadata

# Parallel metadata reads at least (when jobs > 1): small and latency-bound, so enough
# for one wave over a typical remote (each worker reads meta.json, then accuracy.json).
METADATA_JOBS = 32


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

    def read(key: str) -> tuple[Any, tuple[bytes | None, bytes | None] | None]:
        """(meta.json or the CacheError reading it, (accuracy.json, perf.json) when the
        entry could be pulled): one worker reads them, so selection costs one wave of
        requests."""
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
        return meta, (remote.read_file(key, ACCURACY_FILE), remote.read_file(key, PERF_FILE))

    metas = _parallel_map(read, keys, jobs)
    if timings is not None:
        timings.add("list", listed - started)
        timings.add("metadata", time.perf_counter() - listed)
    selection = PullSelection()
    accepted: list[Candidate] = []
    for key, (meta, mutable) in zip(keys, metas):
        accuracy, perf = mutable or (None, None)
        if meta is None:
            continue  # deleted meanwhile
        problem = meta.message if isinstance(meta, CacheError) else meta_problem(key, meta)
        if problem:
            _skip_damaged(selection, remote, key, {}, problem)
            continue
        candidate = Candidate(key, meta)
        if wanted is not None and candidate.spec_id not in wanted:
            continue
        candidate.reason = runnable_here(meta, platform)
        if candidate.reason:
            selection.skipped.append(candidate)
            continue
        try:
            state = state_of_accuracy(accuracy, key)
            parse_perf(perf, key)
        except CacheError as exc:
            _skip_damaged(selection, remote, key, meta, exc.message)
            continue
        if state != "accepted":
            candidate.reason = f"{state} (only accepted engines are pulled)"
            selection.skipped.append(candidate)
        else:
            candidate.accuracy, candidate.perf = accuracy, perf
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


def _skip_damaged(selection: PullSelection, remote: Any, key: str, meta: dict,
                  problem: str) -> None:
    """One entry whose metadata cannot be trusted is skipped with its reason; the pull goes
    on (see docs/exit-codes.md: damaged remote entries are warnings)."""
    from trtops.redact import redact

    log.warning("%s: skipping damaged entry %s: %s", redact(remote.url), key[:12], problem)
    selection.skipped.append(Candidate(key, meta, reason=f"{DAMAGED}{problem}"))


@dataclass
class PullOutcome:
    key: str
    spec_id: str
    status: str  # fetched | present | failed
    detail: str = ""
    size: int = 0


def _deferred_durability(local: Any, keys: Sequence[str]) -> Any:
    """Journal ``keys`` so they can be published without fsyncs: the journal, locked for
    the rest of the pull (:func:`trtops.cache.journal.start`), or None when this store or
    system cannot (then every file is fsynced as before)."""
    from trtops.cache import journal

    if not keys or not callable(getattr(local, "adopt_entry", None)) \
            or not callable(getattr(local, "recover_unsynced", None)):
        return None
    boot = journal.boot_id()
    if boot is None:
        return None
    try:
        return journal.start(Path(local.root), keys, boot)
    except OSError:
        return None  # a full or read-only disk: the fsyncing path reports it properly


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
    held = None if fsync else _deferred_durability(local, [c.key for c in todo])
    try:
        return _pull_entries(remote, local, candidates, todo, durable=held is None, jobs=jobs,
                             progress=progress, timings=timings, begun=begun)
    finally:
        if held is not None:
            held.release()  # from now on the next command may retire the journal


def _pull_entries(remote: Any, local: Any, candidates: Sequence[Candidate],
                  todo: list[Candidate], *, durable: bool, jobs: int, progress: bool | None,
                  timings: PullTimings | None, begun: float) -> list[PullOutcome]:
    """:func:`pull_entries` once the journal (if any) is written and held."""
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

        def publish(candidate: Candidate, staged: Staged, label: str,
                    started: float) -> PullOutcome:
            try:
                publish_staged(local, staged, timings)
            except CacheError as exc:
                return failed(candidate, label, exc)
            size = entry_size(candidate.meta)
            seconds = time.monotonic() - started
            bar.item_done(label, f"pulled {format_bytes(size)} ({seconds:.1f}s)")
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
                    check_meta(remote, candidate.key, candidate.meta)
                    staged = stage_entry(remote, local, candidate.key, dict(candidate.meta),
                                          progress=bar.advance, accuracy=candidate.accuracy, perf=candidate.perf,
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



# --------------------------------------------------------------------------- the verb


def target_platform(*, platform_file: str | None = None, gpu: str | None = None,
                    compute_capability: str | None = None, tensorrt: str | None = None) -> Any:
    """The machine to pull for: this one, or the one named by flags or a platform file.

    Args:
        platform_file: A file written by ``trtops info --json -o FILE``.
        gpu: GPU product name (None or "auto": detect); needs ``compute_capability``.
        compute_capability: Compute capability of ``gpu``, e.g. "8.9".
        tensorrt: TensorRT version (None or "auto": detect).

    Raises:
        InputError: a compute capability without a GPU name.
        EnvironmentMissing: no TensorRT version or no GPU known.
    """
    import argparse

    from trtops.errors import EnvironmentMissing, InputError
    from trtops.keys.platform import platform_from_args

    flags = argparse.Namespace(
        platform=platform_file,
        gpu=None if gpu in (None, "auto") else gpu,
        compute_capability=compute_capability,
        tensorrt=None if tensorrt in (None, "auto") else tensorrt,
    )
    if flags.gpu is None and flags.compute_capability is not None:
        raise InputError("--compute-capability needs --gpu NAME",
                         hint="e.g. --gpu 'NVIDIA L4' --compute-capability 8.9")
    platform = platform_from_args(flags)
    if platform.tensorrt is None:
        raise EnvironmentMissing(
            "cannot tell which TensorRT version the engines must run with: TensorRT is not "
            "installed here",
            hint="install TensorRT, or name a version: --tensorrt 10.13.3.9",
        )
    if not platform.gpus:
        note = next((n for n in platform.notes if n.startswith("no GPU")), "no GPU found")
        raise EnvironmentMissing(
            f"cannot tell which engines run here: {note}",
            hint="run on the GPU machine, or name one: --gpu 'NVIDIA L4' --compute-capability 8.9",
        )
    return platform


def _loader_kinds(loaders: str | None, spec: Any | None) -> tuple[str, ...]:
    from trtops.emit.emitter import parse_loaders

    if loaders:
        return parse_loaders(loaders)
    if spec is not None and getattr(spec, "loaders", None):
        return tuple(spec.loaders)
    return ("python",)


def emit_pulled(local: Any, candidates: Sequence[Candidate], spec_by_id: dict[str, Any],
                dest: str | Path, loaders: str | None = None) -> Any:
    """Write loaders for pulled entries into ``dest`` (see :mod:`trtops.emit.emitter`).

    Args:
        local: The local store holding the entries.
        candidates: The pulled entries.
        spec_by_id: Specs of the manifests given, by id (their ``loaders`` are the default).
        dest: Directory to write into.
        loaders: ``python,triton``-style list overriding each spec's loaders.

    Returns:
        The emitter's report (written files, skipped engines with reasons).
    """
    from trtops.emit.emitter import EmitItem, emit_entries

    items = [EmitItem(spec_id=c.spec_id, key=c.key,
                      loaders=_loader_kinds(loaders, spec_by_id.get(c.spec_id)))
             for c in candidates]
    return emit_entries(local, items, Path(dest), engine_ref="copy")


@dataclass
class PullResult:
    """What ``trtops pull`` selected and did."""

    selection: PullSelection
    missing: list[str]  # spec ids asked for with no runnable accepted engine on the remote
    outcomes: list[PullOutcome] = field(default_factory=list)
    emitted: list[dict] = field(default_factory=list)
    emit_skipped: list[dict] = field(default_factory=list)

    @property
    def fetched(self) -> list[PullOutcome]:
        return [o for o in self.outcomes if o.status == "fetched"]

    @property
    def failed(self) -> list[PullOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def dry_run_rows(self, local: Any) -> list[dict[str, Any]]:
        """What ``pull --dry-run`` shows: selected entries (and whether present), skipped
        ones with their reason."""
        rows = [{"key": c.key, "spec_id": c.spec_id, "action": "pull",
                 "present": local.has_entry(c.key)} for c in self.selection.selected]
        rows += [{"key": c.key, "spec_id": c.spec_id, "action": "skip", "reason": c.reason}
                 for c in self.selection.skipped]
        return rows


def pull(remote: Any, local: Any, platform: Any, *, specs: Sequence[Any] = (),
         every: bool = False, jobs: int = DEFAULT_JOBS, fsync: bool = False,
         dry_run: bool = False, dest: str | Path | None = None,
         loaders: str | None = None, progress: bool | None = None) -> PullResult:
    """Select what ``platform`` can run on the remote, pull it, and write loaders.

    Args:
        remote: The remote store.
        local: The local store.
        platform: The machine (see :func:`target_platform`).
        specs: Only these manifests' engines (empty: every runnable engine).
        every: Every qualifying entry, not one per logical engine.
        jobs: Entries in flight at once.
        fsync: See :func:`pull_entries`.
        dry_run: Select only.
        dest: Write loaders for the entries pulled (or already present) here.
        loaders: Loader list overriding the manifests' (see :func:`emit_pulled`).
        progress: As for :func:`pull_entries`.

    Returns:
        A :class:`PullResult`.
    """
    spec_by_id = {spec.id: spec for spec in specs}
    selection = select_for_pull(remote, platform, spec_ids=spec_by_id or None,
                                every=every, jobs=jobs)
    result = PullResult(selection,
                        sorted(set(spec_by_id) - {c.spec_id for c in selection.selected}))
    if dry_run:
        return result
    fetch_and_emit(remote, local, platform, result, spec_by_id, jobs=jobs, fsync=fsync,
                    dest=dest, loaders=loaders, progress=progress)
    return result


def fetch_and_emit(remote: Any, local: Any, platform: Any, result: PullResult,
                    spec_by_id: dict[str, Any], *, jobs: int, fsync: bool,
                    dest: str | Path | None, loaders: str | None,
                    progress: bool | None) -> None:
    """Pull the selection, point the refs at what is now local, write loaders."""
    selected = result.selection.selected
    result.outcomes = pull_entries(remote, local, selected, jobs=jobs, fsync=fsync,
                                   progress=progress)
    record_pull_refs(local, selected, result.outcomes, platform)
    # Loaders for every entry that is here now: one entry that failed to pull (reported,
    # exit 1) does not keep the others from being served.
    ready = {o.key for o in result.outcomes if o.status != "failed"}
    if dest and ready:
        report = emit_pulled(local, [c for c in selected if c.key in ready], spec_by_id,
                             dest, loaders)
        result.emitted, result.emit_skipped = report.written, report.skipped


def record_pull_refs(local: Any, candidates: Sequence[Candidate],
                     outcomes: Sequence[PullOutcome], platform: Any) -> None:
    """Refs for the entries a pull made local (fetched or already present), so that
    ``trtops gc`` keeps them: per engine the one this machine prefers, and the others
    (``pull --all``) listed beside it."""
    from trtops.cache.entries import record_pull_ref

    local_keys = {o.key for o in outcomes if o.status in ("fetched", "present")}
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        if candidate.key in local_keys:
            groups.setdefault(candidate.spec_id, []).append(candidate)
    for spec_id, group in sorted(groups.items()):
        best = min(group, key=lambda c: (preference(c.meta, platform), -c.created_at, c.key))
        record_pull_ref(local, spec_id, best.key, best.meta,
                        also=[c.key for c in group if c is not best])
