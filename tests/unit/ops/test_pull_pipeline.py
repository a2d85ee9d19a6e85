"""`trtops pull` overlaps selection with downloads: an entry's download starts as soon as
its choice is final, and what is selected is exactly what `pull --dry-run` reports."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pull_helpers import (
    HERE,
    L4,
    Recording,
    add_entry,
    journaled_at_each_adoption,
    record_adoptions,
    write_perf,
)

from trtops.cache import journal
from trtops.cache.local import LocalStore
from trtops.cache.store import (
    ACCURACY_FILE,
    BUILD_LOG_FILE,
    ENGINE_FILE,
    META_FILE,
    PERF_FILE,
)
from trtops.ops.pull import pull, pull_selected, select_for_pull


@pytest.mark.parametrize("speculate", [False, True])
def test_a_download_starts_before_every_metadata_read_is_done(tmp_path, remote, speculate):
    first = add_entry(remote.store, "a")
    second = add_entry(remote.store, "b")
    # b's accuracy.json is answered only once a's engine is being downloaded: the pull
    # must start a's download while b (another engine) is still being judged.
    started = threading.Event()
    remote.on_fetch[(first, ENGINE_FILE)] = started
    remote.hold[(second, ACCURACY_FILE)] = started
    node = LocalStore(tmp_path / "node")
    record_adoptions(node, remote)
    selection, outcomes = pull_selected(remote, node, HERE, progress=False,
                                        speculate=speculate)

    assert remote.held_until[(second, ACCURACY_FILE)] is True
    order = remote.events
    assert order.index(("fetch", first, ENGINE_FILE)) < order.index(("read", second, ACCURACY_FILE))
    # Every meta.json is read before any entry appears (a later one could be a newer
    # build of the same engine); without speculation before any download starts, too.
    last_meta = max(i for i, event in enumerate(order) if event[2] == "meta.json")
    first_adoption = min(i for i, event in enumerate(order) if event[0] == "adopt")
    assert last_meta < first_adoption
    if not speculate:
        assert last_meta < min(i for i, event in enumerate(order) if event[0] == "fetch")
    assert sorted(o.status for o in outcomes) == ["fetched", "fetched"]
    assert node.read_file(second, ENGINE_FILE) == b"b" * 1000
    # The selection is what select_for_pull returns.
    assert [c.key for c in selection.selected] == [c.key for c in select_for_pull(remote, HERE).selected]


def asked(remote: Recording, key: str) -> list[tuple[str, str]]:
    return sorted((what, name) for what, k, name in remote.events if k == key)


def test_each_file_is_asked_for_once_and_only_when_needed(tmp_path, remote):
    key = add_entry(remote.store, "a")
    node = LocalStore(tmp_path / "node")
    pull_selected(remote, node, HERE, progress=False)
    # meta.json and accuracy.json are read to select the entry and written as read; no
    # perf.json was listed, so none is asked for; build.log stays on the remote.
    assert asked(remote, key) == [("fetch", ENGINE_FILE), ("read", ACCURACY_FILE),
                                  ("read", META_FILE)]
    assert sorted(node.list_files(key)) == [ACCURACY_FILE, ENGINE_FILE, META_FILE]


def test_a_listed_perf_json_is_read_once_and_kept(tmp_path, remote):
    key = add_entry(remote.store, "a")
    perf = write_perf(remote.store, key)
    node = LocalStore(tmp_path / "node")
    pull_selected(remote, node, HERE, progress=False)
    assert asked(remote, key) == [("fetch", ENGINE_FILE), ("read", ACCURACY_FILE),
                                  ("read", META_FILE), ("read", PERF_FILE)]
    assert node.read_file(key, PERF_FILE) == perf


def test_with_logs_fetches_the_build_log_too(tmp_path, remote):
    key = add_entry(remote.store, "a")
    node = LocalStore(tmp_path / "node")
    pull_selected(remote, node, HERE, progress=False, with_logs=True)
    assert ("fetch", BUILD_LOG_FILE) in asked(remote, key)
    assert node.read_file(key, BUILD_LOG_FILE) == b"log"


def test_an_entry_the_listing_shows_unverified_costs_only_its_meta_json(tmp_path, remote):
    key = add_entry(remote.store, "a", state="unverified")
    selection = select_for_pull(remote, HERE)
    assert asked(remote, key) == [("read", META_FILE)]
    assert [c.reason for c in selection.skipped] == ["unverified (only accepted engines are pulled)"]


def test_without_a_listing_every_mutable_file_is_asked_for(tmp_path, remote):
    # A store that cannot list files (or an entry that appeared after the listing).
    key = add_entry(remote.store, "a")
    remote.list_entry_files = None  # type: ignore[attr-defined]
    pull_selected(remote, LocalStore(tmp_path / "node"), HERE, progress=False)
    assert asked(remote, key) == [("fetch", ENGINE_FILE), ("read", ACCURACY_FILE),
                                  ("read", META_FILE), ("read", PERF_FILE)]


def selection_rows(selection) -> tuple[list[str], list[tuple[str, str]]]:
    return ([c.key for c in selection.selected],
            sorted((c.key, c.reason or "") for c in selection.skipped))


@pytest.mark.parametrize("every", [False, True])
def test_the_overlapped_pull_selects_what_dry_run_reports(tmp_path, remote, every):
    same = "2026-01-01T00:00:00Z"
    add_entry(remote.store, "a", spec_id="m/a/fp16/lab", created_at=same)
    add_entry(remote.store, "a-l4", spec_id="m/a/fp16/lab", gpu=L4, created_at=same)
    add_entry(remote.store, "e-old", spec_id="m/e/fp16/lab", created_at="2020-01-01T00:00:00Z")
    add_entry(remote.store, "e-new", spec_id="m/e/fp16/lab", created_at="2030-01-01T00:00:00Z")
    add_entry(remote.store, "f", spec_id="m/f/fp16/lab", state="rejected")
    damaged = add_entry(remote.store, "g", spec_id="m/g/fp16/lab")
    (remote.store.entry_dir(damaged) / ACCURACY_FILE).write_text('{"state": 7}')

    dry = pull(remote, LocalStore(tmp_path / "dry"), HERE, every=every, dry_run=True)
    node = LocalStore(tmp_path / "node")
    done = pull(remote, node, HERE, every=every, progress=False)
    assert selection_rows(done.selection) == selection_rows(dry.selection)
    assert sorted(o.key for o in done.fetched) == sorted(dry_key for dry_key in
                                                         selection_rows(dry.selection)[0])
    assert len(done.selection.damaged) == 1
    assert done.selection.selected, "something to pull"
    # Serial reads (jobs 1) choose the same.
    serial = select_for_pull(remote, HERE, every=every, jobs=1)
    assert selection_rows(serial) == selection_rows(dry.selection)


def test_the_journal_names_the_candidates_before_any_entry_appears(tmp_path, remote):
    if journal.boot_id() is None:
        pytest.skip("no boot id here: pulls fsync instead of journaling")
    keys = sorted([add_entry(remote.store, "a"), add_entry(remote.store, "b")])
    node = LocalStore(tmp_path / "node")
    seen = journaled_at_each_adoption(node)
    _, outcomes = pull_selected(remote, node, HERE, progress=False)
    assert [o.status for o in outcomes] == ["fetched", "fetched"]
    assert seen == [keys, keys]


def test_an_entry_judged_before_the_last_meta_read_is_journaled_too(tmp_path, remote, monkeypatch):
    """a is judged (its accuracy.json handled) before b's meta.json comes in, made certain,
    not left to timing: a is then no longer waiting for its files, and the journal must
    still name it, or a would be published without fsync and without a journal to recover
    it by."""
    import trtops.ops.pull as pull_module

    if journal.boot_id() is None:
        pytest.skip("no boot id here: pulls fsync instead of journaling")
    first = add_entry(remote.store, "a")
    second = add_entry(remote.store, "b")
    judged_first = threading.Event()
    judged = pull_module._Reads.judged

    def judged_then_note(self, key: str) -> None:
        judged(self, key)
        if key == first:
            judged_first.set()

    monkeypatch.setattr(pull_module._Reads, "judged", judged_then_note)
    original_meta = remote.read_meta

    def read_meta(key: str) -> Any:
        if key == second:  # b's meta.json is answered only once a is judged
            assert judged_first.wait(timeout=300), "a was never judged"
        return original_meta(key)

    remote.read_meta = read_meta  # type: ignore[method-assign]
    node = LocalStore(tmp_path / "node")
    journaled = journaled_at_each_adoption(node)
    _, outcomes = pull_selected(remote, node, HERE, progress=False)
    assert sorted(o.key for o in outcomes if o.status == "fetched") == sorted([first, second])
    assert journaled == [sorted([first, second])] * 2


def test_an_entry_accepted_after_the_listing_is_pulled_by_the_next_pull(tmp_path, remote):
    """README (Remote): the listing is the pull's view; an accuracy.json written after it
    leaves the entry unverified for this pull, and the next pull takes it."""
    import json

    key = add_entry(remote.store, "late", state="unverified")
    listed = remote.store.list_entry_files

    def list_then_accept():
        listing = listed()
        remote.store.replace_file(key, ACCURACY_FILE,
                                  json.dumps({"state": "accepted", "summary": "ok"}).encode())
        return listing

    remote.list_entry_files = list_then_accept  # type: ignore[attr-defined]
    node = LocalStore(tmp_path / "node")
    selection, outcomes = pull_selected(remote, node, HERE, progress=False)
    assert outcomes == [] and not node.has_entry(key)
    assert [c.key for c in selection.skipped] == [key]
    assert "unverified" in (selection.skipped[0].reason or "")

    del remote.list_entry_files  # the next pull lists the accepted entry
    _, outcomes = pull_selected(remote, node, HERE, progress=False)
    assert [(o.key, o.status) for o in outcomes] == [(key, "fetched")]


def test_every_meta_json_read_is_sent_before_an_answer_is_handled(remote, monkeypatch):
    """The choice is final only once every meta.json is in, so handling an answer must
    not hold back the reads not yet sent. Here handling waits until every meta.json has
    been asked for (4 keys, fewer than the pull's readers): it would wait in vain if a
    read were sent only while no answer waited."""
    import trtops.ops.pull as pull_module

    keys = [add_entry(remote.store, label) for label in "abcd"]
    asked: list[str] = []
    all_asked, lock = threading.Event(), threading.Lock()
    read_meta = remote.read_meta

    def counting(key: str) -> Any:
        with lock:
            asked.append(key)
            if len(asked) == len(keys):
                all_asked.set()
        return read_meta(key)

    remote.read_meta = counting
    eligible = pull_module._Reads.eligible
    waited: list[bool] = []

    def eligible_once_all_asked(self, key: str, meta: Any) -> bool:
        # A hang guard, not a bound: the reads are sent at once or never.
        waited.append(all_asked.wait(timeout=20))
        return eligible(self, key, meta)

    monkeypatch.setattr(pull_module._Reads, "eligible", eligible_once_all_asked)
    selection = select_for_pull(remote, HERE, jobs=8)

    assert waited and all(waited)
    assert sorted(c.key for c in selection.selected) == sorted(keys)
