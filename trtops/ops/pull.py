"""`trtops pull`: fetch the engines this machine can run from a remote cache.

A fleet node asks the remote cache for accepted entries that its own GPU and TensorRT can
run (exact matches, and hardware- or version-compatible engines where the rules allow, see
:mod:`trtops.cache.compat`), one per logical engine (or every one), downloads them in
parallel, verifies every sha256 before anything is renamed into place (see
:func:`trtops.cache.transfer.stage_entry`), and stores them in the local cache atomically.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.cache import layout
from trtops.cache.compat import preference, runnable_here
from trtops.cache.entries import entry_size, meta_problem, parse_perf, state_of_accuracy
from trtops.cache.store import ACCURACY_FILE, META_FILE, PERF_FILE
from trtops.cache.transfer import PullTimings
from trtops.errors import CacheError, RemoteError
from trtops.names import TRANSFER_JOBS
from trtops.ops.pull_downloads import Downloads, PullOutcome

log = logging.getLogger("trtops.ops.pull")


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
# for one wave over a typical remote (each key's meta.json, then for a candidate its
# accuracy.json and perf.json side by side, each only where the listing showed it).
METADATA_JOBS = 32


def best_of(group: Sequence[Candidate], platform: Any) -> Candidate:
    """The entry of one logical engine to pull among its accepted, runnable candidates: the
    newest build of the model/config (an older engine of stale weights never wins over a
    newer one), then the best platform match, then the newest, then the key."""
    newest: dict[str, float] = {}
    for candidate in group:
        newest[candidate.variant] = max(newest.get(candidate.variant, 0.0), candidate.created_at)
    return min(group, key=lambda c: (-newest[c.variant], preference(c.meta, platform),
                                     -c.created_at, c.key))


def select_for_pull(remote: Any, platform: Any, *, spec_ids: Iterable[str] | None = None,
                    every: bool = False, jobs: int = TRANSFER_JOBS,
                    timings: PullTimings | None = None,
                    on_candidates: Callable[[list[str]], None] | None = None,
                    on_selected: Callable[[Candidate], None] | None = None,
                    on_provisional: Callable[[Candidate], None] | None = None,
                    on_withdrawn: Callable[[str], None] | None = None) -> PullSelection:
    """Choose the remote entries a machine should pull.

    An entry qualifies when it is accepted and :func:`trtops.cache.compat.runnable_here`
    allows it. Per logical engine (spec id) the newest build of the model/config wins (an
    older engine of stale weights is never chosen over a newer one), and among its entries
    the best match: this exact GPU model, then the same TensorRT version, then portable
    plans; ties go to the newest (:func:`best_of`).

    The reads can overlap the downloads (:func:`pull_selected` starts one at each
    ``on_selected``): every key's meta.json is read in one parallel wave, and an entry that
    could run here gets its accuracy.json and perf.json read side by side as soon as its
    meta.json is in, each only when the listing showed it (:func:`list_entry_files`: one
    listing names every object, so an entry never benchmarked costs no request for its
    perf.json; both files are mutable, so what the listing lacked was absent when the pull
    looked, and the entry is judged as it was then). The listing does not say which
    logical engine a key belongs to, so a choice is final only once *every* meta.json is
    read (an unread one may be a newer build of the same engine) and every candidate of
    that engine is judged; with ``every``, each accepted candidate is final once judged
    and every meta.json is read.
    The returned selection does not depend on the order in which reads complete.

    Before that, a candidate judged accepted while meta.json reads are still out is
    *provisional* when it will be selected unless one of them names another entry of the
    same logical engine: it is the only entry of its engine seen so far that could run
    here (with ``every``: any accepted candidate, each is selected). :func:`pull_selected`
    starts its download at once and publishes it only once the choice is final. If
    another entry of that engine turns up, the candidate is withdrawn (it may still be
    selected in the end, like any other).

    Args:
        remote: The remote store.
        platform: The machine (:class:`trtops.keys.platform.Platform`).
        spec_ids: Only these logical engines (``manifest/model/precision/target``).
        every: Select every qualifying entry, not one per logical engine.
        jobs: Parallel metadata reads (at least :data:`METADATA_JOBS` unless 1: each is
            one small request, bound by latency).
        timings: Collects where the time went (see :class:`PullTimings`).
        on_candidates: Called once, in this thread, when every meta.json is read, with
            the keys that may still be selected (a superset of the selection), before any
            ``on_selected``.
        on_selected: Called in this thread with each selected candidate as soon as the
            choice is final.
        on_provisional: Called in this thread with each provisional candidate (above),
            before every meta.json is read; the same object is handed to ``on_selected``
            when it is selected.
        on_withdrawn: Called in this thread with the key of a provisional candidate
            that another entry of its engine may displace.

    Returns:
        Selected and skipped candidates (skipped ones carry a reason; selected ones keep
        the accuracy.json they were judged by, which :func:`pull_entries` writes as is).

    Raises:
        RemoteError: the remote failed (reads not yet started are cancelled).
    """
    started = time.perf_counter()
    wanted = set(spec_ids) if spec_ids is not None else None
    listing = list_entry_files(remote)
    keys = list(remote.list_keys()) if listing is None else list(listing)
    listed = time.perf_counter()
    reads = _Reads(remote, platform, wanted, every, on_candidates or (lambda keys: None),
                   on_selected or (lambda candidate: None), listing,
                   on_provisional=on_provisional or (lambda candidate: None),
                   on_withdrawn=on_withdrawn or (lambda key: None))
    reads.run(keys, jobs)
    if timings is not None:
        timings.add("list", listed - started)
        timings.add("metadata", time.perf_counter() - listed)
    selection = _final_selection(reads, keys, remote, platform, every)
    if timings is not None:
        timings.wall("select", time.perf_counter() - started)
    return selection


def list_entry_files(remote: Any) -> dict[str, frozenset[str]] | None:
    """The remote's complete entries with the files each had when listed (one listing,
    :meth:`~trtops.cache.store.EntryStore.list_entry_files`), or None for a store that
    cannot say (then every mutable file is asked for)."""
    lister = getattr(remote, "list_entry_files", None)
    return lister() if callable(lister) else None


def _read_meta(remote: Any, key: str) -> Any:
    """meta.json, None (deleted meanwhile) or the CacheError reading it."""
    try:
        return remote.read_meta(key)
    except RemoteError:
        raise
    except CacheError as exc:  # one unreadable entry must not stop the others
        return exc


class _Reads:
    """The metadata reads of :func:`select_for_pull`, with a choice per logical engine as
    soon as it is final. Completed reads come back through one queue and are handled in
    the calling thread, so the bookkeeping needs no lock and the callbacks run there."""

    def __init__(self, remote: Any, platform: Any, wanted: set[str] | None, every: bool,
                 on_candidates: Callable[[list[str]], None],
                 on_selected: Callable[[Candidate], None],
                 listing: dict[str, frozenset[str]] | None = None, *,
                 on_provisional: Callable[[Candidate], None] = lambda candidate: None,
                 on_withdrawn: Callable[[str], None] = lambda key: None) -> None:
        self.remote, self.platform, self.wanted, self.every = remote, platform, wanted, every
        self.on_candidates, self.on_selected = on_candidates, on_selected
        self.on_provisional, self.on_withdrawn = on_provisional, on_withdrawn
        self.listing = listing  # key -> files when listed (None: unknown, ask for each)
        self.metas: dict[str, Any] = {}  # key -> meta dict, None (deleted) or CacheError
        self.mutable: dict[str, dict[str, bytes | None]] = {}  # key -> {name: bytes}
        self.accepted: dict[str, list[Candidate]] = {}  # spec id -> judged accepted
        self.waiting: dict[str, set[str]] = {}  # spec id -> candidate keys being read
        self.unread = 0  # meta.json reads outstanding
        self.handed: set[str] = set()  # spec ids decided (keys, with every)
        self.seen: dict[str, int] = {}  # spec id -> eligible keys whose meta.json is read
        self.provisional: dict[str, str] = {}  # spec id -> its provisional key (not every)

    def eligible(self, key: str, meta: Any) -> bool:
        """Whether the entry could be pulled here, judged by its meta.json alone."""
        return not (meta is None or isinstance(meta, CacheError)
                    or meta_problem(key, meta) is not None
                    or (self.wanted is not None
                        and str(meta.get("spec_id") or "?") not in self.wanted)
                    or runnable_here(meta, self.platform) is not None)

    def listed(self, key: str) -> frozenset[str]:
        """The mutable files to read for ``key``: those the listing showed (every one
        when the store gave no listing)."""
        mutable = frozenset(layout.MUTABLE_FILES)
        files = self.listing.get(key) if self.listing is not None else None
        return mutable if files is None else mutable & files

    def run(self, keys: list[str], jobs: int) -> None:
        workers = 1 if jobs <= 1 else max(1, min(max(jobs, METADATA_JOBS), 3 * len(keys)))
        done: queue.SimpleQueue = queue.SimpleQueue()
        self.unread = len(keys)
        if not keys:
            self.on_candidates([])
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trtops-meta") as pool:
            def submit(name: str, key: str, function: Callable[..., Any], *args: Any) -> None:
                pool.submit(function, *args).add_done_callback(
                    lambda future: done.put((name, key, future)))

            def ask(key: str) -> int:
                """Read the mutable files of ``key``; the requests sent."""
                self.mutable[key] = {}
                listed = self.listed(key)
                for small in layout.MUTABLE_FILES:
                    if small in listed:
                        submit(small, key, self.remote.read_file, key, small)
                    else:  # absent when listed: no request for it
                        self.mutable[key][small] = None
                return len(layout.MUTABLE_FILES) - len(self.mutable[key])

            def handle(name: str, key: str, value: Any) -> int:
                """One read is in; the requests this sent."""
                if name != META_FILE:
                    self.mutable[key][name] = value
                    if len(self.mutable[key]) == len(layout.MUTABLE_FILES):
                        self.judged(key)
                    return 0
                self.metas[key] = value
                self.unread -= 1
                sent = 0
                known = False  # every mutable file in (or absent): judged at once
                if self.eligible(key, value):
                    spec_id = str(value.get("spec_id") or "?")
                    self.seen_eligible(spec_id)
                    self.waiting.setdefault(spec_id, set()).add(key)
                    sent = ask(key)
                    known = len(self.mutable[key]) == len(layout.MUTABLE_FILES)
                if self.unread == 0:
                    self.on_candidates(self.candidate_keys())
                    for spec_id in sorted(set(self.waiting) | set(self.accepted)):
                        self.hand_on(spec_id)
                if known:  # after on_candidates, which comes before any choice
                    self.judged(key)
                return sent

            try:
                # meta.json reads sent, and answered; reads not yet handled
                asked = answered = outstanding = 0
                while asked < len(keys) or outstanding:
                    # Every reader kept busy with meta.json reads, the next sent as soon
                    # as one is answered: the choice is final only once all are in. (Sent
                    # only while no answer waited, 20 reads took 76 ms to send on the
                    # 16-core lab host, each answered in 2-25 ms: benchmarks/RESULTS.md.)
                    while asked < len(keys) and asked - answered < workers:
                        key = keys[asked]
                        submit(META_FILE, key, _read_meta, self.remote, key)
                        outstanding += 1
                        asked += 1
                    name, key, future = done.get()
                    outstanding -= 1
                    answered += name == META_FILE
                    # RemoteError: the remote failed
                    outstanding += handle(name, key, future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def seen_eligible(self, spec_id: str) -> None:
        """One more entry of ``spec_id`` that could be pulled: a provisional one of the
        same engine may lose to it (with ``every`` none can)."""
        self.seen[spec_id] = self.seen.get(spec_id, 0) + 1
        if not self.every and spec_id in self.provisional:
            self.on_withdrawn(self.provisional.pop(spec_id))

    def candidate_keys(self) -> list[str]:
        """Every key that may still be selected: those waiting for their mutable files and
        those already judged accepted (a key whose accuracy.json came in before the last
        meta.json is no longer waiting, and must be journaled all the same)."""
        keys = {k for group in self.waiting.values() for k in group}
        keys.update(c.key for group in self.accepted.values() for c in group)
        return sorted(keys)

    def judged(self, key: str) -> None:
        """Both mutable files of a candidate are read (or known absent from the listing):
        keep it when it is accepted."""
        meta = self.metas[key]
        spec_id = str(meta.get("spec_id") or "?")
        self.waiting[spec_id].discard(key)
        files = self.mutable[key]
        try:
            state = state_of_accuracy(files[ACCURACY_FILE], key)
            parse_perf(files[PERF_FILE], key)
        except CacheError:
            state = None  # damaged: the final pass says so
        if state == "accepted":
            candidate = Candidate(key, meta, accuracy=files[ACCURACY_FILE], perf=files[PERF_FILE])
            self.accepted.setdefault(spec_id, []).append(candidate)
            # Selected for sure unless an unread meta.json names another entry of this
            # engine: with every meta.json read, hand_on below decides instead.
            if self.unread and (self.every or self.seen[spec_id] == 1):
                if not self.every:
                    self.provisional[spec_id] = key
                self.on_provisional(candidate)
        if self.unread == 0:
            self.hand_on(spec_id)

    def hand_on(self, spec_id: str) -> None:
        """Hand on what is final for one logical engine (all meta.json read)."""
        group = self.accepted.get(spec_id, [])
        if self.every:
            for candidate in sorted(group, key=lambda c: c.key):
                if candidate.key not in self.handed:
                    self.handed.add(candidate.key)
                    self.on_selected(candidate)
        elif group and not self.waiting.get(spec_id) and spec_id not in self.handed:
            self.handed.add(spec_id)
            self.on_selected(best_of(group, self.platform))


def _final_selection(reads: _Reads, keys: list[str], remote: Any, platform: Any,
                     every: bool) -> PullSelection:
    """The selection, from every read, in listing order (what ``pull --dry-run`` shows);
    the accepted candidates are the objects handed on."""
    selection = PullSelection()
    accepted = {c.key: c for group in reads.accepted.values() for c in group}
    chosen: list[Candidate] = []
    for key in keys:
        meta = reads.metas.get(key)
        if meta is None:
            continue  # deleted meanwhile
        problem = meta.message if isinstance(meta, CacheError) else meta_problem(key, meta)
        if problem:
            _skip_damaged(selection, remote, key, {}, problem)
            continue
        candidate = Candidate(key, meta)
        if reads.wanted is not None and candidate.spec_id not in reads.wanted:
            continue
        candidate.reason = runnable_here(meta, platform)
        if candidate.reason:
            selection.skipped.append(candidate)
            continue
        if key in accepted:
            chosen.append(accepted[key])
            continue
        files = reads.mutable.get(key, {})
        try:
            state = state_of_accuracy(files.get(ACCURACY_FILE), key)
            parse_perf(files.get(PERF_FILE), key)
        except CacheError as exc:
            _skip_damaged(selection, remote, key, meta, exc.message)
            continue
        candidate.reason = f"{state} (only accepted engines are pulled)"
        selection.skipped.append(candidate)
    if every:
        selection.selected = sorted(chosen, key=lambda c: (c.spec_id, c.key))
        return selection
    groups: dict[str, list[Candidate]] = {}
    for candidate in chosen:
        groups.setdefault(candidate.spec_id, []).append(candidate)
    for spec_id in sorted(groups):
        group = groups[spec_id]
        best = best_of(group, platform)
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


def pull_entries(remote: Any, local: Any, candidates: Sequence[Candidate], *,
                 jobs: int = TRANSFER_JOBS, progress: bool | None = None,
                 timings: PullTimings | None = None, fsync: bool = False,
                 with_logs: bool = False) -> list[PullOutcome]:
    """Fetch selected entries into the local cache in parallel (verified, atomic).

    Two stages: ``jobs`` workers download (and verify) the files of one entry each into a
    staging directory; other workers then make the local entries of them (meta.json,
    rename), so a download slot never waits for that and the next entry starts at once.

    Durability: by default the keys are written to an fsynced journal (while the
    downloads go on) and the entries are published without fsyncs once it is written;
    the next command that opens the cache retires the journal, and after a reboot
    re-hashes those entries and deletes damaged ones (see :mod:`trtops.cache.journal`).
    With ``fsync`` (or where the journal is not possible), every file and directory is
    fsynced before its entry becomes visible.

    Args:
        remote: The remote store.
        local: The local store.
        candidates: From :func:`select_for_pull`.
        jobs: Entries in flight at once.
        progress: None: a bar in a terminal, a line per entry elsewhere; True: the bar;
            False: silent.
        timings: Collects where the time went (see :class:`PullTimings`).
        fsync: Make every entry durable before it becomes visible instead of journaling.
        with_logs: Also fetch each entry's build.log (by default it stays on the remote:
            trtops never reads it, see :data:`trtops.cache.store.OPTIONAL_FILES`).

    Returns:
        One outcome per candidate: fetched, present (was already local) or failed.
    """
    with Downloads(remote, local, jobs=jobs, fsync=fsync, progress=progress,
                    timings=timings, with_logs=with_logs) as downloads:
        downloads.journal([c.key for c in candidates])
        downloads.expect(candidates)
        downloads.all_expected()
        for candidate in candidates:
            downloads.submit(candidate)
    return downloads.outcomes(candidates)


def pull_selected(remote: Any, local: Any, platform: Any, *,
                  spec_ids: Iterable[str] | None = None, every: bool = False,
                  jobs: int = TRANSFER_JOBS, progress: bool | None = None,
                  timings: PullTimings | None = None, fsync: bool = False,
                  with_logs: bool = False,
                  speculate: bool = True) -> tuple[PullSelection, list[PullOutcome]]:
    """:func:`select_for_pull` and :func:`pull_entries` overlapped: each entry's download
    starts as soon as its choice is final, while the metadata of other engines is still
    being read (the journal is written once every meta.json is read, while accuracy.json
    and perf.json reads are in flight), or, with ``speculate``, as soon as it is
    provisional (see :func:`select_for_pull`), staged and published only once selected
    (:mod:`trtops.ops.pull_downloads`). Selects exactly what :func:`select_for_pull`
    selects.

    Returns:
        The selection and one outcome per selected entry (as :func:`pull_entries`).

    Raises:
        RemoteError: the remote failed while being read (downloads already started end
            first, speculative ones are dropped; entries already verified are kept).
    """
    with Downloads(remote, local, jobs=jobs, fsync=fsync, progress=progress,
                   timings=timings, with_logs=with_logs) as downloads:
        def selected(candidate: Candidate) -> None:
            downloads.expect([candidate])
            downloads.submit(candidate)

        hunches: dict[str, Any] = {}
        if speculate:
            hunches = {"on_provisional": downloads.speculate,
                       "on_withdrawn": downloads.withdraw}
        try:
            selection = select_for_pull(remote, platform, spec_ids=spec_ids, every=every,
                                        jobs=jobs, timings=timings,
                                        on_candidates=downloads.journal,
                                        on_selected=selected, **hunches)
        except CacheError as exc:
            downloads.give_up(exc.message)
            raise
        downloads.all_expected()
    return selection, downloads.outcomes(selection.selected)


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
         every: bool = False, jobs: int = TRANSFER_JOBS, fsync: bool = False,
         dry_run: bool = False, dest: str | Path | None = None,
         loaders: str | None = None, progress: bool | None = None,
         with_logs: bool = False) -> PullResult:
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
        with_logs: As for :func:`pull_entries` (``pull --with-logs``).

    Returns:
        A :class:`PullResult`.
    """
    spec_by_id = {spec.id: spec for spec in specs}
    if dry_run:
        selection = select_for_pull(remote, platform, spec_ids=spec_by_id or None,
                                    every=every, jobs=jobs)
        return PullResult(selection,
                          sorted(set(spec_by_id) - {c.spec_id for c in selection.selected}))
    # Downloads start while the metadata of other engines is still being read.
    selection, outcomes = pull_selected(remote, local, platform, spec_ids=spec_by_id or None,
                                        every=every, jobs=jobs, progress=progress,
                                        fsync=fsync, with_logs=with_logs)
    result = PullResult(selection,
                        sorted(set(spec_by_id) - {c.spec_id for c in selection.selected}),
                        outcomes)
    emit_fetched(local, platform, result, spec_by_id, dest=dest, loaders=loaders)
    return result


def fetch_and_emit(remote: Any, local: Any, platform: Any, result: PullResult,
                    spec_by_id: dict[str, Any], *, jobs: int, fsync: bool,
                    dest: str | Path | None, loaders: str | None,
                    progress: bool | None, with_logs: bool = False) -> None:
    """Pull the selection, point the refs at what is now local, write loaders."""
    result.outcomes = pull_entries(remote, local, result.selection.selected, jobs=jobs,
                                   fsync=fsync, progress=progress, with_logs=with_logs)
    emit_fetched(local, platform, result, spec_by_id, dest=dest, loaders=loaders)


def emit_fetched(local: Any, platform: Any, result: PullResult, spec_by_id: dict[str, Any],
                 *, dest: str | Path | None, loaders: str | None) -> None:
    """Point the refs at what the pull made local, write loaders."""
    selected = result.selection.selected
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
