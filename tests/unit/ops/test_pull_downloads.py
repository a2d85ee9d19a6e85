"""Speculative downloads of `trtops pull` (trtops/ops/pull_downloads.py): a provisional
entry's download starts before every meta.json is read; it becomes visible only once it
is selected and journaled, and one that is not selected is dropped without a trace and
without failing the pull."""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from pull_helpers import (
    HERE,
    add_entry,
    journaled_at_each_adoption,
    record_adoptions,
)

import trtops.ops.pull_downloads as pull_downloads
from trtops.cache import journal
from trtops.cache.local import LocalStore
from trtops.cache.store import ACCURACY_FILE, ENGINE_FILE, META_FILE
from trtops.errors import RemoteError
from trtops.ops.pull import pull, pull_entries, pull_selected, select_for_pull
from trtops.ops.pull_downloads import Downloads, Dropped, Speculation


class Ended(collections.defaultdict):
    """key -> an event set when a download of that entry into staging has ended; ``how``:
    key -> "staged" or the name of the exception it ended with."""

    def __init__(self) -> None:
        super().__init__(threading.Event)
        self.how: dict[str, str] = {}


@pytest.fixture
def staged(monkeypatch) -> Ended:
    ended = Ended()
    stage = Downloads.stage

    def stage_then_note(self, candidate, *args: Any) -> Any:
        try:
            result = stage(self, candidate, *args)
        except BaseException as exc:
            ended.how[candidate.key] = type(exc).__name__
            raise
        finally:
            ended[candidate.key].set()
        ended.how[candidate.key] = "staged"
        return result

    monkeypatch.setattr(Downloads, "stage", stage_then_note)
    return ended


def leftovers(node: LocalStore) -> list[str]:
    """What the pull left in the cache's tmp/ (staging directories, partial files)."""
    return sorted(p.name for p in node.tmp_dir.iterdir()) if node.tmp_dir.exists() else []


@pytest.mark.parametrize("every", [False, True])
def test_a_provisional_entry_is_downloaded_before_every_meta_json_is_read(tmp_path, remote,
                                                                           every):
    """b's meta.json is answered only once a's engine is being downloaded: without
    speculation that would wait in vain. With --all both entries of one engine are
    selected, so a is provisional even though b belongs to the same engine."""
    spec_id = "m/same/fp16/h100" if every else None
    first = add_entry(remote.store, "a", spec_id=spec_id)
    second = add_entry(remote.store, "b", spec_id=spec_id)
    started = threading.Event()
    remote.on_fetch[(first, ENGINE_FILE)] = started
    remote.hold[(second, META_FILE)] = started
    node = LocalStore(tmp_path / "node")
    record_adoptions(node, remote)
    journaled = journaled_at_each_adoption(node)
    selection, outcomes = pull_selected(remote, node, HERE, progress=False, every=every)

    assert remote.held_until[(second, META_FILE)] is True
    order = remote.events
    assert order.index(("fetch", first, ENGINE_FILE)) < order.index(("read", second, META_FILE))
    # Nothing became visible before every meta.json was read, and the journal named
    # every entry before it appeared.
    assert order.index(("read", second, META_FILE)) < min(
        i for i, event in enumerate(order) if event[0] == "adopt")
    if journal.boot_id() is not None:
        assert journaled == [sorted([first, second])] * 2
    assert sorted((o.key, o.status) for o in outcomes) == sorted(
        [(first, "fetched"), (second, "fetched")])
    assert node.read_file(first, ENGINE_FILE) == b"a" * 1000
    assert [c.key for c in selection.selected] == [
        c.key for c in select_for_pull(remote, HERE, every=every).selected]
    assert leftovers(node) == []


@pytest.mark.parametrize("dropped", ["while downloading", "once staged"])
def test_a_speculative_download_that_is_not_selected_is_discarded(tmp_path, remote,
                                                                   staged: Ended,
                                                                   monkeypatch, dropped):
    """old is alone of its engine when judged, so its download starts; then new, a newer
    build of the same engine, turns up and wins. old's download is dropped (mid-transfer,
    or after it was staged), never published, and leaves nothing behind."""
    engine = "m/x/fp16/h100"
    old = add_entry(remote.store, "x-old", spec_id=engine, created_at="2020-01-01T00:00:00Z")
    new = add_entry(remote.store, "x-new", spec_id=engine, created_at="2030-01-01T00:00:00Z")
    started = threading.Event()
    remote.on_fetch[(old, ENGINE_FILE)] = started
    if dropped == "while downloading":
        # old's engine is held mid-download until its speculation is withdrawn.
        withdrawn = threading.Event()
        withdraw = Downloads.withdraw

        def withdraw_then_note(self, key: str) -> None:
            withdraw(self, key)
            if key == old:
                withdrawn.set()

        monkeypatch.setattr(Downloads, "withdraw", withdraw_then_note)
        remote.gate[(old, ENGINE_FILE)] = withdrawn
        remote.hold[(new, META_FILE)] = started
    else:
        remote.hold[(new, META_FILE)] = staged[old]
    node = LocalStore(tmp_path / "node")
    record_adoptions(node, remote)
    journaled = journaled_at_each_adoption(node)
    result = pull(remote, node, HERE, progress=False)

    assert remote.held_until[(new, META_FILE)] is True
    assert ("fetch", old, ENGINE_FILE) in remote.events
    # Withdrawn mid-transfer, the download stopped at its next chunk.
    assert staged.how[old] == ("Dropped" if dropped == "while downloading" else "staged")
    assert [(o.key, o.status) for o in result.outcomes] == [(new, "fetched")]
    assert [c.key for c in result.selection.selected] == [new]
    assert not node.has_entry(old)
    assert [key for what, key, _ in remote.events if what == "adopt"] == [new]
    if journal.boot_id() is not None:
        assert all(new in keys for keys in journaled) and journaled
    assert leftovers(node) == []


def test_an_entry_whose_engine_has_another_candidate_is_not_speculated(tmp_path, remote,
                                                                         monkeypatch):
    """old is judged while a meta.json (c's) is still out, but new, another entry of the
    same engine, was seen already: old is not provisional, nothing of it is downloaded."""
    import trtops.ops.pull as pull_module

    engine = "m/x/fp16/h100"
    old = add_entry(remote.store, "x-old", spec_id=engine, created_at="2020-01-01T00:00:00Z")
    new = add_entry(remote.store, "x-new", spec_id=engine, created_at="2030-01-01T00:00:00Z")
    other = add_entry(remote.store, "c")
    both_seen, old_judged = threading.Event(), threading.Event()
    remote.hold[(old, ACCURACY_FILE)] = both_seen  # until the pull has both meta.json
    seen_eligible = pull_module._Reads.seen_eligible

    def seen_then_note(self, spec_id: str) -> None:
        seen_eligible(self, spec_id)
        if self.seen.get(engine) == 2:
            both_seen.set()

    monkeypatch.setattr(pull_module._Reads, "seen_eligible", seen_then_note)
    judged = pull_module._Reads.judged

    def judged_then_note(self, key: str) -> None:
        judged(self, key)
        if key == old:
            old_judged.set()

    monkeypatch.setattr(pull_module._Reads, "judged", judged_then_note)
    remote.hold[(other, META_FILE)] = old_judged
    speculated: list[str] = []
    speculate = Downloads.speculate

    def speculate_noting(self, candidate: Any) -> None:
        speculated.append(candidate.key)
        speculate(self, candidate)

    monkeypatch.setattr(Downloads, "speculate", speculate_noting)
    result = pull(remote, LocalStore(tmp_path / "node"), HERE, progress=False)

    assert remote.held_until[(old, ACCURACY_FILE)] is True
    assert remote.held_until[(other, META_FILE)] is True
    assert old not in speculated
    assert ("fetch", old, ENGINE_FILE) not in remote.events
    assert sorted((o.key, o.status) for o in result.outcomes) == sorted(
        [(new, "fetched"), (other, "fetched")])


def test_a_failed_speculative_download_of_an_entry_not_selected_fails_nothing(
        tmp_path, remote, staged: Ended):
    """old's speculative download fails as if the remote were gone, before new displaces
    it: the pull neither reports it nor gives up on the remote (new is still fetched)."""
    engine = "m/x/fp16/h100"
    old = add_entry(remote.store, "x-old", spec_id=engine, created_at="2020-01-01T00:00:00Z")
    new = add_entry(remote.store, "x-new", spec_id=engine, created_at="2030-01-01T00:00:00Z")
    remote.fail[(old, ENGINE_FILE)] = RemoteError("cannot reach the remote cache (test)")
    remote.hold[(new, META_FILE)] = staged[old]
    node = LocalStore(tmp_path / "node")
    result = pull(remote, node, HERE, progress=False)

    assert remote.held_until[(new, META_FILE)] is True
    assert [(o.key, o.status) for o in result.outcomes] == [(new, "fetched")]
    assert result.failed == []
    assert not node.has_entry(old)
    assert leftovers(node) == []


def test_the_error_of_a_selected_speculative_download_is_its_entry_s(tmp_path, remote,
                                                                      staged: Ended):
    """a's speculative download finds its engine corrupt (sha256 mismatch) before the
    choice is final: a is selected and fails with that error, as it would have after the
    choice; b, another engine, is pulled."""
    first = add_entry(remote.store, "a")
    second = add_entry(remote.store, "b")
    (remote.store.entry_dir(first) / ENGINE_FILE).write_bytes(b"not the engine")
    remote.hold[(second, META_FILE)] = staged[first]
    node = LocalStore(tmp_path / "node")
    result = pull(remote, node, HERE, progress=False)

    assert remote.held_until[(second, META_FILE)] is True
    statuses = {o.key: o for o in result.outcomes}
    assert statuses[first].status == "failed" and "sha256" in statuses[first].detail
    assert statuses[second].status == "fetched"
    assert not node.has_entry(first)
    assert leftovers(node) == []


@pytest.mark.parametrize("why", ["the journal could not be written", "--fsync"])
def test_a_speculative_download_no_journal_names_is_fsynced_before_it_appears(
        tmp_path, remote, staged: Ended, monkeypatch, why):
    """A speculative download starts before the pull knows whether its journal can be
    written; when it cannot (or with --fsync), every file of the entry is fsynced before
    the entry appears, as for any other download."""
    first = add_entry(remote.store, "a")
    second = add_entry(remote.store, "b")
    remote.hold[(second, META_FILE)] = staged[first]
    if why == "--fsync":
        options = {"fsync": True}
    else:
        monkeypatch.setattr(pull_downloads, "deferred_durability",
                            lambda local, keys, boot: None)
        options = {}
    flushed: set[tuple[int, int]] = set()  # (device, inode): a file keeps it when renamed
    fsync = os.fsync

    def fsync_noting(fd: int) -> None:
        fsync(fd)
        info = os.fstat(fd)
        flushed.add((info.st_dev, info.st_ino))

    monkeypatch.setattr(os, "fsync", fsync_noting)
    node = LocalStore(tmp_path / "node")
    adopted: list[tuple[str, bool, set[str]]] = []
    adopt = node.adopt_entry

    def adopt_noting(key: str, staging: Any, meta: dict, *, durable: bool = True) -> Any:
        unflushed = {p.name for p in Path(staging).iterdir()
                     if (p.stat().st_dev, p.stat().st_ino) not in flushed}
        adopted.append((key, durable, unflushed))
        return adopt(key, staging, meta, durable=durable)

    node.adopt_entry = adopt_noting  # type: ignore[method-assign]
    _, outcomes = pull_selected(remote, node, HERE, progress=False, **options)

    assert remote.held_until[(second, META_FILE)] is True
    assert sorted(o.status for o in outcomes) == ["fetched", "fetched"]
    assert list(node.root.joinpath(journal.JOURNAL_DIR).glob("*.json")) == []
    # Each entry adopted as durable, with every staged file flushed before.
    assert sorted(adopted) == sorted([(first, True, set()), (second, True, set())])


def test_speculation_stays_within_its_budget(tmp_path, remote, monkeypatch):
    """At most one speculative download per download slot and no more bytes than
    SPECULATION_BYTES (an engine larger than that waits for the choice); once one is
    displaced, no more start (so a pull wastes at most SPECULATION_BYTES)."""
    keys = [add_entry(remote.store, label) for label in ("a", "b", "c")]
    candidates = [{c.key: c for c in select_for_pull(remote, HERE).selected}[k] for k in keys]
    size = pull_downloads.entry_size(candidates[0].meta, with_logs=False)
    node = LocalStore(tmp_path / "node")

    def speculated(jobs: int, *, withdraw_first: bool = False) -> list[str]:
        with Downloads(remote, node, jobs=jobs, fsync=False, progress=False,
                       timings=None) as downloads:
            for index, candidate in enumerate(candidates):
                downloads.speculate(candidate)
                if withdraw_first and index == 0:
                    downloads.withdraw(candidate.key)
            started = sorted(downloads.speculations)
            assert downloads.speculating == size * len(started)
        # Never selected: dropped when the pull ends.
        assert downloads.speculations == {} and downloads.speculating == 0
        return started

    assert speculated(2) == sorted(keys[:2])  # two download slots
    assert speculated(3, withdraw_first=True) == []  # a was displaced: b and c wait
    monkeypatch.setattr(pull_downloads, "SPECULATION_BYTES", 2 * size - 1)
    assert speculated(3) == [keys[0]]  # a second one would pass the bytes
    assert not any(node.has_entry(key) for key in keys)
    assert leftovers(node) == []


def test_a_large_engine_waits_for_the_choice(tmp_path, remote, monkeypatch):
    """Over the budget, nothing is downloaded before every meta.json is read."""
    monkeypatch.setattr(pull_downloads, "SPECULATION_BYTES", 0)
    add_entry(remote.store, "a")
    add_entry(remote.store, "b")
    _, outcomes = pull_selected(remote, LocalStore(tmp_path / "node"), HERE, progress=False)
    order = remote.events
    assert sorted(o.status for o in outcomes) == ["fetched", "fetched"]
    assert max(i for i, event in enumerate(order) if event[2] == META_FILE) < min(
        i for i, event in enumerate(order) if event[0] == "fetch")


def test_speculative_bytes_join_the_progress_only_once_selected():
    """The progress bar's totals grow only with selected entries: bytes received before
    the claim are held back, then counted at once; after a drop the next chunk stops the
    download."""
    counted: list[int] = []
    speculation = Speculation(10)
    speculation.progress(3)
    speculation.progress(4)
    assert counted == []
    speculation.claim(counted.append)
    speculation.progress(2)
    assert counted == [7, 2]

    dropped = Speculation(10)
    dropped.future = concurrent.futures.Future()
    dropped.progress(5)
    dropped.drop()
    with pytest.raises(Dropped):
        dropped.progress(1)
    assert dropped.future.cancelled()


@pytest.mark.skipif(journal.boot_id() is None, reason="no boot id: no journal to write")
@pytest.mark.parametrize("how", ["selected first", "without speculation"])
def test_downloads_start_while_the_journal_is_written(tmp_path, remote, monkeypatch, how):
    """The journal's fsyncs (tens of milliseconds behind the writes of downloads already
    running) hold up no download: here the journal is written only once both engines are
    being fetched. Publishing waits for it: both entries appear named by the journal,
    without being fsynced first."""
    keys = [add_entry(remote.store, label) for label in ("a", "b")]
    fetching = {key: threading.Event() for key in keys}
    for key in keys:
        remote.on_fetch[(key, ENGINE_FILE)] = fetching[key]
    start = journal.start
    waited: list[bool] = []

    def start_once_fetching(*args: Any) -> Any:
        # A hang guard, not a bound: before, the downloads waited for this to return.
        waited.append(all(event.wait(timeout=20) for event in fetching.values()))
        return start(*args)

    monkeypatch.setattr(journal, "start", start_once_fetching)
    node = LocalStore(tmp_path / "node")
    journaled = journaled_at_each_adoption(node)
    adopted_durable: list[bool] = []
    adopt = node.adopt_entry

    def adopt_noting(key: str, staging: Any, meta: dict, *, durable: bool = True) -> Any:
        adopted_durable.append(durable)
        return adopt(key, staging, meta, durable=durable)

    node.adopt_entry = adopt_noting  # type: ignore[method-assign]
    if how == "selected first":
        outcomes = pull_entries(remote, node, select_for_pull(remote, HERE).selected,
                                progress=False)
    else:
        _, outcomes = pull_selected(remote, node, HERE, progress=False, speculate=False)

    assert waited == [True]
    assert sorted((o.key, o.status) for o in outcomes) == sorted(
        (key, "fetched") for key in keys)
    assert journaled == [sorted(keys)] * 2
    assert adopted_durable == [False, False]
    assert leftovers(node) == []
