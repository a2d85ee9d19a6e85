"""The download and publish workers of ``trtops pull`` (:mod:`trtops.ops.pull` chooses
what they fetch): each entry verified into a staging directory, then published by other
workers, under the pull's journal (:mod:`trtops.cache.journal`) unless ``--fsync``.

Speculation: the choice of an entry is final only once every meta.json of the remote is
read, but most logical engines have one entry this machine can run, and the link would
sit idle until then. So the download of a *provisional* candidate (accepted, and the only
entry of its engine seen so far: :func:`trtops.ops.pull.select_for_pull`) starts at once
into a staging directory, within :data:`SPECULATION_BYTES`. Nothing of it becomes visible
before it is selected and the journal has been written: a staging directory is no entry.
Once selected it is published like any other download (its bytes join the progress bar
then); withdrawn (another entry of its engine turned up) or left unselected, it stops at
its next chunk and its staging is removed, and whatever went wrong with it is no error
of the pull. An error of a selected one is that entry's outcome, as if it had started
after the choice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtops.cache.entries import check_meta, entry_size
from trtops.cache.transfer import PullTimings, Staged, publish_staged, stage_entry
from trtops.errors import CacheError, RemoteError
from trtops.names import format_bytes
from trtops.ops.progress import TransferProgress

if TYPE_CHECKING:
    from trtops.ops.pull import Candidate

# The most bytes of speculative downloads not yet selected at once (also at most one per
# download slot). What speculation saves is the time to the final choice, whatever the
# size; what a displaced one wastes (remote egress, staging space) grows with the size,
# so an engine larger than this waits for the choice. Once one is displaced the pull
# starts no more (a remote whose engines have several builds each would mostly waste),
# and none is selected before every meta.json is read, that is before the last could be
# displaced: so a pull wastes at most this many bytes.
SPECULATION_BYTES = 1 << 30


@dataclass
class PullOutcome:
    key: str
    spec_id: str
    status: str  # fetched | present | failed
    detail: str = ""
    size: int = 0


def journal_boot(local: Any) -> str | None:
    """This boot's id where a pull into ``local`` can be journaled (a store that adopts
    staged entries and recovers unsynced ones, a system with boot ids), else None."""
    from trtops.cache import journal

    if not callable(getattr(local, "adopt_entry", None)) \
            or not callable(getattr(local, "recover_unsynced", None)):
        return None
    return journal.boot_id()


def deferred_durability(local: Any, keys: Sequence[str], boot: str) -> Any:
    """Journal ``keys`` (boot id ``boot``: :func:`journal_boot`) so they can be published
    without fsyncs: the journal, locked for the rest of the pull
    (:func:`trtops.cache.journal.start`), or None when it could not be written (then every
    file is fsynced as before)."""
    from trtops.cache import journal

    try:
        return journal.start(Path(local.root), keys, boot)
    except OSError:
        return None  # a full or read-only disk: the fsyncing path reports it properly


class Dropped(CacheError):
    """A speculative download given up: its entry was not selected (raised from its
    progress callback, so the transfer stops at its next chunk and cleans up)."""


class Speculation:
    """A download started before its entry was selected (:meth:`Downloads.speculate`).
    Bytes received before :meth:`claim` are held back from the progress bar (the entry is
    not in its totals yet); after :meth:`drop` the next chunk raises :class:`Dropped`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.started = time.monotonic()
        self.future: Future | None = None  # Staged | None (already local) | CacheError
        self._lock = threading.Lock()
        self._held = 0
        self._progress: Callable[[int], None] | None = None
        self._dropped = False

    def progress(self, count: int) -> None:
        with self._lock:
            if self._dropped:
                raise Dropped("a speculative download of an entry that was not selected")
            progress = self._progress
            if progress is None:
                self._held += count
                return
        progress(count)

    def claim(self, progress: Callable[[int], None]) -> None:
        """The entry is selected: its bytes count from now on, those held first."""
        with self._lock:
            self._progress, held, self._held = progress, self._held, 0
        progress(held)

    def drop(self) -> None:
        """The entry is not (or may not be) selected: stop, and remove what was staged."""
        with self._lock:
            self._dropped = True
        assert self.future is not None
        self.future.cancel()  # not started yet: never starts
        self.future.add_done_callback(_discard)  # at once if done, else when it ends


def _discard(future: Future) -> None:
    """Remove what a dropped speculative download staged; its error is nobody's."""
    if not future.cancelled() and future.exception() is None and future.result() is not None:
        future.result().discard()


class Downloads:
    """The download and publish workers of a pull, fed one candidate at a time (the
    journal, if any, first: :meth:`journal`); provisional candidates may be downloaded
    before (:meth:`speculate`). Leaving the ``with`` block drops the speculative downloads
    never selected, waits for every download, then every publication, and releases the
    journal. Every method but the workers' runs in the thread that feeds it."""

    def __init__(self, remote: Any, local: Any, *, jobs: int, fsync: bool,
                 progress: bool | None, timings: PullTimings | None,
                 with_logs: bool = False) -> None:
        self.remote, self.local, self.jobs, self.fsync = remote, local, jobs, fsync
        self.timings, self.with_logs = timings, with_logs
        self.bar = TransferProgress(0, 0, "pull", interactive=progress, quiet=progress is False)
        self.begun = time.perf_counter()
        self.first: float | None = None  # when the first download started
        self.transferred = self.begun  # when the last download ended
        self.clock = threading.Lock()
        self.held: Any = None  # the journal, held until the end
        self.journaled = False
        # Done once the journal is written (or could not be): publishing waits for it,
        # downloads do not (its fsyncs took tens of milliseconds behind the writes of
        # the speculative downloads, and the main thread started nothing meanwhile).
        self.journal_written: Future | None = None
        # After the remote failed (unreachable after retries), entries not yet started
        # fail at once instead of each waiting through its own retries.
        self.gave_up: list[str] = []
        self.present: list[str] = []  # keys already local when handed on
        self.results: dict[str, PullOutcome | Future] = {}
        # Speculative downloads neither selected nor dropped yet, and their bytes.
        self.speculations: dict[str, Speculation] = {}
        self.speculating = 0
        self.displaced = False  # a speculation was withdrawn: start no more
        # The keys the journal names: only these may be published without fsyncs.
        self.unsynced: frozenset[str] = frozenset()
        self.publishers = ThreadPoolExecutor(max_workers=max(1, jobs),
                                             thread_name_prefix="trtops-publish")
        self.pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="trtops-pull")
        prepare = getattr(remote, "prepare_downloads", None)  # S3: copier processes
        if callable(prepare):
            prepare(max(1, jobs))

    def __enter__(self) -> Downloads:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for key in list(self.speculations):  # never selected (or the pull failed)
                self.withdraw(key)
            # The download pool is shut down (waited for) before the publish pool, so
            # every staged entry still finds a publisher.
            self.pool.shutdown(wait=True)
            self.publishers.shutdown(wait=True)
            if self.journal_written is not None:
                self.journal_written.exception()  # written (a lock to release) or failed
            self.bar.all_known()
        finally:
            self.bar.__exit__(*exc)
            if self.held is not None:
                self.held.release()  # from now on the next command may retire the journal
        if self.timings is not None:
            ended = time.perf_counter()
            first = self.begun if self.first is None else self.first
            self.timings.wall("first_transfer", first - self.begun)
            self.timings.wall("transfer", max(0.0, self.transferred - first))
            self.timings.wall("publish_tail", max(0.0, ended - max(self.transferred, first)))

    def journal(self, keys: Sequence[str]) -> None:
        """Journal the keys that may be published (:func:`deferred_durability`) unless
        ``fsync``; before the first :meth:`submit`. The journal is written in a thread of
        its own while downloads go on; every publication waits for it, and one the
        journal does not name is fsynced first (:meth:`publish`), also when the journal
        could not be written after all."""
        self.journaled = True
        todo = [key for key in keys if not self.local.has_entry(key)]
        boot = None if self.fsync or not todo else journal_boot(self.local)
        if boot is None:
            return
        written: Future = Future()

        def write() -> None:
            try:
                self.held = deferred_durability(self.local, todo, boot)
                self.unsynced = frozenset() if self.held is None else frozenset(todo)
            except BaseException as exc:  # noqa: BLE001 - raised where it is waited for
                written.set_exception(exc)
            else:
                written.set_result(None)

        self.journal_written = written
        threading.Thread(target=write, name="trtops-journal", daemon=True).start()

    def expect(self, candidates: Sequence[Candidate]) -> None:
        self.bar.expect(sum(entry_size(c.meta, with_logs=self.with_logs) for c in candidates
                            if not self.local.has_entry(c.key)),
                        sum(1 for c in candidates if not self.local.has_entry(c.key)))

    def all_expected(self) -> None:
        self.bar.all_known()

    def give_up(self, message: str) -> None:
        self.gave_up.append(message)

    def speculate(self, candidate: Candidate) -> None:
        """Start downloading a provisional candidate (see the module's docstring) unless
        that would pass :data:`SPECULATION_BYTES` or one per download slot, or one was
        displaced already. It is staged without fsyncs unless ``fsync`` (:meth:`publish`
        makes it durable if the journal does not name it) and published only if
        :meth:`submit` hands it on."""
        key = candidate.key
        if self.journaled or self.gave_up or self.displaced or key in self.speculations \
                or self.local.has_entry(key):
            return
        size = entry_size(candidate.meta, with_logs=self.with_logs)
        if len(self.speculations) >= max(1, self.jobs) \
                or self.speculating + size > SPECULATION_BYTES:
            return
        speculation = Speculation(size)
        speculation.future = self.pool.submit(self.stage, candidate, speculation.progress,
                                              self.fsync)
        self.speculations[key] = speculation
        self.speculating += size

    def withdraw(self, key: str) -> None:
        """Drop the speculative download of ``key`` (another entry of its engine may be
        chosen; :meth:`submit` downloads it afresh if it is selected after all)."""
        speculation = self.speculations.pop(key, None)
        if speculation is not None:
            self.displaced = True
            self.speculating -= speculation.size
            speculation.drop()

    def submit(self, candidate: Candidate) -> None:
        assert self.journaled, "journal() comes first"
        if self.local.has_entry(candidate.key):
            self.withdraw(candidate.key)
            self.present.append(candidate.key)
            self.results[candidate.key] = PullOutcome(
                candidate.key, candidate.spec_id, "present", "already in the local cache")
            return
        speculation = self.speculations.pop(candidate.key, None)
        if speculation is None:
            self.results[candidate.key] = self.pool.submit(self.one, candidate)
            return
        self.speculating -= speculation.size
        self.results[candidate.key] = self.claim(candidate, speculation)

    def claim(self, candidate: Candidate, speculation: Speculation) -> Future:
        """The outcome of a selected entry's speculative download: published like any
        other once staged (:meth:`downloaded`); its error is the entry's."""
        label = _label(candidate)
        outcome: Future = Future()

        def staged(future: Future) -> None:
            try:
                try:
                    staged = future.result()
                except CacheError as exc:
                    result = self.download_failed(candidate, label, exc)
                else:
                    result = self.downloaded(candidate, staged, label, speculation.started)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for it
                outcome.set_exception(exc)
            else:
                outcome.set_result(result)

        speculation.claim(self.bar.advance)
        assert speculation.future is not None
        speculation.future.add_done_callback(staged)
        return outcome

    def outcomes(self, candidates: Sequence[Candidate]) -> list[PullOutcome]:
        """One per candidate: those already local first, then in the given order."""
        def result(key: str) -> PullOutcome:
            value = self.results[key]
            return value.result() if isinstance(value, Future) else value

        ordered = [c for c in candidates if c.key in self.present]
        ordered += [c for c in candidates if c.key not in self.present]
        return [settled(result(c.key)) for c in ordered if c.key in self.results]

    def failed(self, candidate: Candidate, label: str, exc: CacheError) -> PullOutcome:
        self.bar.item_done(label, f"failed: {exc.message}")
        return PullOutcome(candidate.key, candidate.spec_id, "failed", exc.message)

    def download_failed(self, candidate: Candidate, label: str,
                        exc: CacheError) -> PullOutcome:
        if isinstance(exc, RemoteError):
            self.gave_up.append(exc.message)
        return self.failed(candidate, label, exc)

    def publish(self, candidate: Candidate, staged: Staged, label: str,
                started: float) -> PullOutcome:
        try:
            if self.journal_written is not None:
                self.journal_written.result()
            # The one rule of deferred durability: nothing unsynced becomes visible
            # unless the journal names it (a download may be staged before the journal
            # exists, and it may not have been written).
            if not staged.durable and staged.key not in self.unsynced:
                staged.make_durable()
            publish_staged(self.local, staged, self.timings)
        except CacheError as exc:
            staged.discard()
            return self.failed(candidate, label, exc)
        size = entry_size(candidate.meta, with_logs=self.with_logs)
        seconds = time.monotonic() - started
        self.bar.item_done(label, f"pulled {format_bytes(size)} ({seconds:.1f}s)")
        return PullOutcome(candidate.key, candidate.spec_id, "fetched", "", size)

    def one(self, candidate: Candidate) -> PullOutcome | Future:
        label = _label(candidate)
        started = time.monotonic()
        if self.gave_up:
            self.bar.item_done(label, "not attempted: the remote failed")
            return PullOutcome(candidate.key, candidate.spec_id, "failed",
                               f"not attempted: {self.gave_up[0]}")
        try:
            # Staged durable where no journal can name it.
            staged = self.stage(candidate, self.bar.advance, self.journal_written is None)
        except CacheError as exc:
            return self.download_failed(candidate, label, exc)
        return self.downloaded(candidate, staged, label, started)

    def stage(self, candidate: Candidate, progress: Callable[[int], None],
              durable: bool) -> Staged | None:
        """Download and verify an entry into a staging directory (a worker); None when
        another process pulled it meanwhile."""
        with self.clock:
            if self.first is None:
                self.first = time.perf_counter()
        try:
            if self.local.has_entry(candidate.key):
                return None
            check_meta(self.remote, candidate.key, candidate.meta)
            return stage_entry(self.remote, self.local, candidate.key, dict(candidate.meta),
                               progress=progress, accuracy=candidate.accuracy,
                               perf=candidate.perf, timings=self.timings, durable=durable,
                               judged=candidate.accuracy is not None,
                               with_logs=self.with_logs)
        finally:
            with self.clock:
                self.transferred = max(self.transferred, time.perf_counter())

    def downloaded(self, candidate: Candidate, staged: Staged | None, label: str,
                   started: float) -> PullOutcome | Future:
        """Hand a staged entry to the publishers."""
        if staged is None:
            self.bar.item_done(label, "already in the local cache")
            return PullOutcome(candidate.key, candidate.spec_id, "present",
                               "already in the local cache")
        return self.publishers.submit(self.publish, candidate, staged, label, started)


def _label(candidate: Candidate) -> str:
    return f"{candidate.spec_id} ({candidate.key[:12]})"


def settled(value: PullOutcome | Future) -> PullOutcome:
    return value.result() if isinstance(value, Future) else value
