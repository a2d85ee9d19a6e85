"""The download and publish workers of ``trtops pull`` (:mod:`trtops.ops.pull` chooses
what they fetch): each entry verified into a staging directory, then published by other
workers, under the pull's journal (:mod:`trtops.cache.journal`) unless ``--fsync``."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
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


@dataclass
class PullOutcome:
    key: str
    spec_id: str
    status: str  # fetched | present | failed
    detail: str = ""
    size: int = 0


def deferred_durability(local: Any, keys: Sequence[str]) -> Any:
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


class Downloads:
    """The download and publish workers of a pull, fed one candidate at a time (the
    journal, if any, first: :meth:`journal`). Leaving the ``with`` block waits for every
    download, then every publication, and releases the journal."""

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
        self.durable = True
        self.held: Any = None  # the journal, held until the end
        self.journaled = False
        # After the remote failed (unreachable after retries), entries not yet started
        # fail at once instead of each waiting through its own retries.
        self.gave_up: list[str] = []
        self.present: list[str] = []  # keys already local when handed on
        self.results: dict[str, PullOutcome | Future] = {}
        self.publishers = ThreadPoolExecutor(max_workers=max(1, jobs),
                                             thread_name_prefix="trtops-publish")
        self.pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="trtops-pull")

    def __enter__(self) -> Downloads:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            # The download pool is shut down (waited for) before the publish pool, so
            # every staged entry still finds a publisher.
            self.pool.shutdown(wait=True)
            self.publishers.shutdown(wait=True)
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
        ``fsync``; before the first :meth:`submit`."""
        self.journaled = True
        todo = [key for key in keys if not self.local.has_entry(key)]
        self.held = None if self.fsync else deferred_durability(self.local, todo)
        self.durable = self.held is None

    def expect(self, candidates: Sequence[Candidate]) -> None:
        self.bar.expect(sum(entry_size(c.meta, with_logs=self.with_logs) for c in candidates
                            if not self.local.has_entry(c.key)),
                        sum(1 for c in candidates if not self.local.has_entry(c.key)))

    def all_expected(self) -> None:
        self.bar.all_known()

    def give_up(self, message: str) -> None:
        self.gave_up.append(message)

    def submit(self, candidate: Candidate) -> None:
        assert self.journaled, "journal() comes first"
        if self.local.has_entry(candidate.key):
            self.present.append(candidate.key)
            self.results[candidate.key] = PullOutcome(
                candidate.key, candidate.spec_id, "present", "already in the local cache")
            return
        self.results[candidate.key] = self.pool.submit(self.one, candidate)

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

    def publish(self, candidate: Candidate, staged: Staged, label: str,
                started: float) -> PullOutcome:
        try:
            publish_staged(self.local, staged, self.timings)
        except CacheError as exc:
            return self.failed(candidate, label, exc)
        size = entry_size(candidate.meta, with_logs=self.with_logs)
        seconds = time.monotonic() - started
        self.bar.item_done(label, f"pulled {format_bytes(size)} ({seconds:.1f}s)")
        return PullOutcome(candidate.key, candidate.spec_id, "fetched", "", size)

    def one(self, candidate: Candidate) -> PullOutcome | Future:
        label = f"{candidate.spec_id} ({candidate.key[:12]})"
        started = time.monotonic()
        if self.gave_up:
            self.bar.item_done(label, "not attempted: the remote failed")
            return PullOutcome(candidate.key, candidate.spec_id, "failed",
                               f"not attempted: {self.gave_up[0]}")
        with self.clock:
            if self.first is None:
                self.first = time.perf_counter()
        try:
            if self.local.has_entry(candidate.key):  # another process pulled it meanwhile
                staged = None
            else:
                check_meta(self.remote, candidate.key, candidate.meta)
                staged = stage_entry(self.remote, self.local, candidate.key,
                                     dict(candidate.meta), progress=self.bar.advance,
                                     accuracy=candidate.accuracy, perf=candidate.perf,
                                     timings=self.timings, durable=self.durable,
                                     judged=candidate.accuracy is not None,
                                     with_logs=self.with_logs)
        except CacheError as exc:
            if isinstance(exc, RemoteError):
                self.gave_up.append(exc.message)
            return self.failed(candidate, label, exc)
        finally:
            with self.clock:
                self.transferred = max(self.transferred, time.perf_counter())
        if staged is None:
            self.bar.item_done(label, "already in the local cache")
            return PullOutcome(candidate.key, candidate.spec_id, "present",
                               "already in the local cache")
        return self.publishers.submit(self.publish, candidate, staged, label, started)


def settled(value: PullOutcome | Future) -> PullOutcome:
    return value.result() if isinstance(value, Future) else value
