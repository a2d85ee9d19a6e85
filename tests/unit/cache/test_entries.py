"""An entry checked against its meta.json when an optional file (build.log, which `pull`
leaves on the remote unless --with-logs) is absent, present, or present and damaged."""

from __future__ import annotations

import pytest
from remote_helpers import add_entry

from trtops.cache.entries import check_entry, entry_file_names, entry_size
from trtops.cache.local import LocalStore
from trtops.cache.store import (
    ACCURACY_FILE,
    BUILD_LOG_FILE,
    ENGINE_FILE,
    OPTIONAL_FILES,
    PERF_FILE,
)


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "cache")


def test_the_build_log_is_the_optional_file():
    assert OPTIONAL_FILES == {BUILD_LOG_FILE}


def test_a_missing_build_log_is_sound_a_damaged_one_is_not(store):
    key = add_entry(store, "net")[0].key
    log = store.entry_dir(key) / BUILD_LOG_FILE
    assert check_entry(store, key) is None
    log.unlink()
    assert check_entry(store, key) is None
    log.write_bytes(b"another log\n")
    assert check_entry(store, key).startswith("build.log has")
    log.write_bytes(b"built nex\n")  # same size, other bytes
    assert check_entry(store, key).startswith("build.log sha256 is")
    log.unlink()
    (store.entry_dir(key) / ENGINE_FILE).unlink()
    assert check_entry(store, key) == "engine.plan is missing"  # the engine never is optional


def test_the_files_a_pull_fetches_with_and_without_logs(store):
    key, engine = add_entry(store, "net")
    meta = store.read_meta(key.key)
    assert entry_file_names(meta) == [ENGINE_FILE, ACCURACY_FILE, BUILD_LOG_FILE, PERF_FILE]
    assert entry_file_names(meta, with_logs=False) == [ENGINE_FILE, ACCURACY_FILE, PERF_FILE]
    assert entry_size(meta, with_logs=False) == len(engine)
    assert entry_size(meta) == len(engine) + len(b"built net\n")
