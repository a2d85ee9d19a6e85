"""Deferred durability of pulled entries: the unsynced journal and its recovery."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from trtops.cache import journal, open_store
from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cache.store import BUILD_LOG_FILE, ENGINE_FILE, META_FILE
from trtops.keys.canonical import sha256_json
from trtops.keys.engine_key import EngineKey, key_components

BOOT = "11111111-2222-3333-4444-555555555555"
OTHER_BOOT = "99999999-8888-7777-6666-555555555555"


def add_entry(store: LocalStore, label: str) -> str:
    components = key_components(model_digest=hashlib.sha256(label.encode()).hexdigest(),
                                build={"precision": "fp16"}, tensorrt="10.13.3.9",
                                gpu="cc9.0-nvidia-h100-80gb-hbm3")
    key = EngineKey(key=sha256_json(components), components=components,
                    model={"digest": components["model_digest"], "onnx_sha256": "0" * 64,
                           "external_data": {}, "size": 10})
    publish_entry(store, key, f"m/{label}/fp16/h100",
                  {ENGINE_FILE: label.encode() * 1000, BUILD_LOG_FILE: b"log"},
                  accuracy={"state": "accepted", "summary": "ok"}, tensorrt_version="10.13.3.9",
                  gpu={"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"})
    return key.key


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "cache")


def journals(store: LocalStore) -> list[Path]:
    directory = store.root / journal.JOURNAL_DIR
    return sorted(directory.iterdir()) if directory.exists() else []


def test_boot_id_is_read_from_the_system_file(tmp_path):
    path = tmp_path / "boot_id"
    path.write_text(BOOT + "\n")
    assert journal.boot_id(str(path)) == BOOT
    assert journal.boot_id(str(tmp_path / "missing")) is None
    if os.path.exists(journal.BOOT_ID_PATH):  # Linux
        assert journal.boot_id() == journal.boot_id()


def test_begin_records_the_keys_and_the_boot(store):
    path = journal.begin(store.root, ["b" * 64, "a" * 64, "a" * 64], BOOT)
    record = json.loads(path.read_text())
    assert record["keys"] == ["a" * 64, "b" * 64] and record["boot_id"] == BOOT
    assert record["created"] == pytest.approx(time.time(), abs=60)
    assert journals(store) == [path]  # no temporary file left beside it


def test_nothing_to_recover_touches_nothing(store):
    assert journal.recover(store) == journal.Recovery()
    assert not store.root.exists()  # not even the locks directory


def test_a_young_journal_of_this_boot_stays(store):
    key = add_entry(store, "young")
    journal.begin(store.root, [key], BOOT)
    result = journal.recover(store, current_boot=BOOT)
    assert result.pending == 1 and result.settled == 0
    assert len(journals(store)) == 1 and store.has_entry(key)


def test_an_old_journal_of_this_boot_is_retired(store):
    key = add_entry(store, "settled")
    journal.begin(store.root, [key, "c" * 64], BOOT)  # a key whose pull failed
    result = journal.recover(store, current_boot=BOOT, now=time.time() + journal.SETTLE_SECONDS + 1)
    assert result.settled == 1 and result.checked == [] and result.removed == []
    assert journals(store) == [] and store.has_entry(key)


# A process that holds a journal's lock the way a running pull does, as another container
# (its pid means nothing here) or another host would: it says "held" once it has the lock
# and keeps it until its stdin closes. No sleeps: each side waits for the other's word.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def _hold_lock(path: Path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("boot", [BOOT, OTHER_BOOT], ids=["same-boot", "other-host"])
def test_a_journal_whose_lock_is_held_is_never_retired(store, boot):
    """Ownership by lock, not pid: the journal's pid is of no live process here (a pull in
    another PID namespace) or its boot id is another machine's (a host sharing the
    filesystem); while its lock is held it stays, entries untouched; once released it goes."""
    key = add_entry(store, "running")
    with open(store.entry_dir(key) / ENGINE_FILE, "r+b") as handle:
        handle.truncate(10)  # still being written back, as far as the other host knows
    path = journal.begin(store.root, [key], boot)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pid": 2**22 + 12345}))  # no such process here
    later = time.time() + journal.SETTLE_SECONDS + 1
    holder = _hold_lock(path)
    try:
        result = journal.recover(store, current_boot=BOOT, now=later)
        assert result.pending == 1 and result.settled == 0 and result.removed == []
        assert journals(store) == [path] and store.has_entry(key)
    finally:
        holder.stdin.close()
        holder.wait()
    result = journal.recover(store, current_boot=BOOT, now=later)
    assert result.pending == 0 and journals(store) == []
    assert (result.settled == 1) if boot == BOOT else (result.removed == [key])


def test_a_pull_holds_its_journal_lock_until_it_ends(store):
    key = add_entry(store, "pulling")
    later = time.time() + journal.SETTLE_SECONDS + 1
    with journal.start(store.root, [key], BOOT) as held:
        assert journal.recover(store, current_boot=BOOT, now=later).pending == 1
        assert journals(store) == [held.path]
    assert journal.recover(store, current_boot=BOOT, now=later).settled == 1
    assert journals(store) == []


def test_a_reader_that_cannot_lock_the_cache_leaves_the_journals_alone(store):
    """A serving account with read-only access: the lock file cannot be created (EACCES;
    root, which runs the tests, is never refused, so the lock directory is a file here)."""
    key = add_entry(store, "readonly")
    journal.begin(store.root, [key], OTHER_BOOT)
    locks = store.root / "locks"
    shutil.rmtree(locks, ignore_errors=True)
    locks.write_text("not a directory")
    assert journal.recover(store, current_boot=BOOT) == journal.Recovery()
    assert len(journals(store)) == 1 and store.has_entry(key)


def test_after_a_reboot_damaged_entries_are_removed_and_intact_ones_kept(store):
    intact = add_entry(store, "intact")
    truncated = add_entry(store, "truncated")
    zeroed = add_entry(store, "zeroed")
    torn_meta = add_entry(store, "torn-meta")
    untouched = add_entry(store, "not-in-the-journal")
    with open(store.entry_dir(truncated) / ENGINE_FILE, "r+b") as handle:
        handle.truncate(100)  # what a lost writeback leaves behind
    engine = store.entry_dir(zeroed) / ENGINE_FILE
    engine.write_bytes(bytes(engine.stat().st_size))
    (store.entry_dir(torn_meta) / META_FILE).write_bytes(b"")
    (store.entry_dir(untouched) / ENGINE_FILE).write_bytes(b"not checked: it was fsynced")
    journal.begin(store.root, [intact, truncated, zeroed, torn_meta, "d" * 64], BOOT)

    said = io.StringIO()
    result = journal.recover(store, current_boot=OTHER_BOOT, warn=said)
    assert sorted(result.checked) == sorted([intact, truncated, zeroed, torn_meta])
    assert sorted(result.removed) == sorted([truncated, zeroed, torn_meta])
    assert store.has_entry(intact) and store.has_entry(untouched)
    assert not any(store.entry_dir(k).exists() for k in (truncated, zeroed, torn_meta))
    assert journals(store) == []
    assert "removed the damaged one(s)" in said.getvalue() and truncated[:12] in said.getvalue()


def test_a_torn_journal_is_dropped(store):
    key = add_entry(store, "kept")
    directory = store.root / journal.JOURNAL_DIR
    directory.mkdir()
    (directory / "0123.json").write_text('{"format": 1, "keys": ["')
    assert journal.recover(store, current_boot=OTHER_BOOT).checked == []
    assert journals(store) == [] and store.has_entry(key)


def test_entry_intact_needs_the_engine_and_matching_digests(store):
    key = add_entry(store, "digests")
    entry = store.entry_dir(key)
    assert journal.entry_intact(entry)
    (entry / BUILD_LOG_FILE).write_bytes(b"LOG")
    assert not journal.entry_intact(entry)
    assert not journal.entry_intact(store.root / "nowhere")


def test_an_entry_pulled_without_its_build_log_is_intact(store):
    # `pull` leaves build.log on the remote unless --with-logs: after a reboot such an
    # entry is kept, and its engine is still checked.
    key = add_entry(store, "no-log")
    entry = store.entry_dir(key)
    (entry / BUILD_LOG_FILE).unlink()
    assert journal.entry_intact(entry)
    (entry / ENGINE_FILE).write_bytes(b"torn")
    assert not journal.entry_intact(entry)


def test_opening_the_cache_recovers(store):
    key = add_entry(store, "opened")
    with open(store.entry_dir(key) / ENGINE_FILE, "r+b") as handle:
        handle.truncate(10)
    path = journal.begin(store.root, [key], BOOT)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "boot_id": OTHER_BOOT}))  # written before a reboot
    reopened = open_store(store.root)
    assert not reopened.has_entry(key) and journals(store) == []
