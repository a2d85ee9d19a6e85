"""The local filesystem store: the shared contract plus what only a directory has."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from contract import StoreContract, key_of, meta_for  # noqa: E402

from trtops.cache import BACKENDS, default_cache_url, open_store  # noqa: E402
from trtops.cache import layout  # noqa: E402
from trtops.cache.entries import (  # noqa: E402
    ensure_ref,
    entry_state,
    publish_entry,
    read_accuracy,
    record_ref,
)
from trtops.cache.local import LocalStore  # noqa: E402
from trtops.cache.store import ACCURACY_FILE, BUILD_LOG_FILE, ENGINE_FILE, META_FILE  # noqa: E402
from trtops.errors import CacheError, InputError  # noqa: E402
from trtops.keys.fingerprint import EngineKey, key_components, sha256_json  # noqa: E402


class TestLocalStoreContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return LocalStore(tmp_path / "cache")

    def make_partial_entry(self, store, key):
        directory = store.entry_dir(key)
        directory.mkdir(parents=True)
        (directory / ENGINE_FILE).write_bytes(b"half-copied engine")


def _other_filesystem(tmp_path: Path) -> Path | None:
    """A folder on another filesystem than ``tmp_path`` (/dev/shm is tmpfs), or None."""
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or \
            os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        return None
    folder = Path(tempfile.mkdtemp(prefix="trtops-engines-", dir=shm))
    return folder if shutil.disk_usage(folder).free > 64 << 20 else None


class TestLocalStoreWithEnginesOnAnotherFilesystem(StoreContract):
    """``cache/engines`` mounted (here: symlinked) on another filesystem than ``cache/tmp``:
    renames of staged entries fail with EXDEV; every promise of the contract still holds."""

    @pytest.fixture
    def store(self, tmp_path):
        import shutil

        elsewhere = _other_filesystem(tmp_path)
        if elsewhere is None:
            pytest.skip("no second writable filesystem (/dev/shm) here")
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / layout.ENGINES_DIR).symlink_to(elsewhere)
        yield LocalStore(tmp_path / "cache")
        shutil.rmtree(elsewhere, ignore_errors=True)

    def make_partial_entry(self, store, key):
        directory = store.entry_dir(key)
        directory.mkdir(parents=True)
        (directory / ENGINE_FILE).write_bytes(b"half-copied engine")

    def test_entries_cross_filesystems_and_leave_nothing_behind(self, store):
        key = key_of("exdev")
        store.put_entry(key, {ENGINE_FILE: b"engine"}, meta_for(key, b"engine"))
        staging = store.new_staging("adopt")
        (staging / ENGINE_FILE).write_bytes(b"engine 2")
        other = key_of("exdev-2")
        store.adopt_entry(other, staging, meta_for(other, b"engine 2"))
        assert sorted(store.list_keys()) == sorted([key, other])
        store.delete_entry(key)
        assert list(store.list_keys()) == [other]
        engines = store.root / layout.ENGINES_DIR
        assert not [p for p in engines.rglob(".*")], list(engines.rglob("*"))
        assert list(store.tmp_dir.iterdir()) == []


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "cache")


def engine_key(label: str = "k") -> EngineKey:
    components = key_components(model_digest=hashlib.sha256(label.encode()).hexdigest(),
                                build={"precision": "fp16"}, tensorrt="10.13.3.9",
                                gpu="cc9.0-nvidia-h100-80gb-hbm3")
    return EngineKey(key=sha256_json(components), components=components,
                     model={"digest": components["model_digest"], "onnx_sha256": "0" * 64,
                            "external_data": {}, "size": 10})


def test_layout_on_disk(store):
    key = key_of("layout")
    store.put_entry(key, {ENGINE_FILE: b"e"}, meta_for(key, b"e"))
    store.write_ref("demo/resnet/fp16/h100", {"key": key})
    store.write_timing_cache("8.6.0", "ampere_plus", b"t")
    root = store.root
    assert (root / "engines" / key[:2] / key / "engine.plan").read_bytes() == b"e"
    assert json.loads((root / "engines" / key[:2] / key / "meta.json").read_text())["key"] == key
    assert json.loads((root / "refs/demo/resnet/fp16/h100.json").read_text()) == {"key": key}
    assert (root / "timing/8.6.0/ampere_plus.cache").read_bytes() == b"t"
    assert list((root / "tmp").iterdir()) == []  # staging directories are renamed away


def test_invalid_keys_are_refused(store):
    with pytest.raises(InputError):
        store.has_entry("../../etc")
    with pytest.raises(InputError):
        store.put_entry("ABC", {ENGINE_FILE: b"e"}, {})


def test_damaged_meta_is_a_cache_error(store):
    key = key_of("damaged")
    store.put_entry(key, {ENGINE_FILE: b"e"}, meta_for(key, b"e"))
    (store.entry_dir(key) / META_FILE).write_text("{not json")
    with pytest.raises(CacheError) as info:
        store.read_meta(key)
    assert "cache verify" in info.value.hint


def test_failed_put_leaves_nothing(store, tmp_path):
    key = key_of("fails")
    with pytest.raises(FileNotFoundError):
        store.put_entry(key, {ENGINE_FILE: tmp_path / "does-not-exist.plan"}, meta_for(key, b""))
    assert not store.entry_dir(key).exists()
    assert list(store.tmp_dir.iterdir()) == []


def test_clean_tmp_removes_only_old_leftovers(store):
    store.tmp_dir.mkdir(parents=True)
    old = store.tmp_dir / "put-old.1.abc"
    old.mkdir()
    (old / ENGINE_FILE).write_bytes(b"x")
    fresh = store.tmp_dir / "put-new.2.def"
    fresh.mkdir()
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.clean_tmp(3600) == ["put-old.1.abc"]
    assert fresh.exists() and not old.exists()


def test_list_entry_dirs_includes_partial(store):
    complete, partial = key_of("complete"), key_of("partial")
    store.put_entry(complete, {ENGINE_FILE: b"e"}, meta_for(complete, b"e"))
    store.entry_dir(partial).mkdir(parents=True)
    assert set(store.list_entry_dirs()) == {complete, partial}
    assert list(store.list_keys()) == [complete]


def test_list_entry_dirs_follows_the_layout_rule(store):
    """Only engines/<key[:2]>/<key> is an entry directory, as every store lists keys: a key
    under another prefix folder would be acted on at a path where it is not."""
    key = key_of("stray")
    for prefix in (key[:1], key[:3], "zz"):
        (store.root / "engines" / prefix / key).mkdir(parents=True)
    assert list(store.list_entry_dirs()) == []


def test_list_refs_skips_stray_files(store):
    store.write_ref("m/model/fp16/t", {"key": key_of("a")})
    (store.root / "refs" / "m" / "notes.txt").write_text("hello")
    (store.root / "refs" / "m" / ".hidden.json").write_text("{}")
    assert [ref for ref, _ in store.list_refs()] == ["m/model/fp16/t"]


def test_lock_names_are_sanitized(store):
    with store.lock("entry-" + key_of("x")):
        pass
    with store.lock("weird name/with:chars"):
        pass
    names = sorted(p.name for p in (store.root / "locks").iterdir())
    assert all("/" not in n and ":" not in n for n in names)
    assert layout.lock_file_name("a/b") != layout.lock_file_name("a_b")


# --------------------------------------------------------------------------- helpers for apply


def test_publish_entry_writes_meta_and_ref(store, tmp_path):
    key = engine_key("publish")
    plan_file = tmp_path / "engine.plan"
    plan_file.write_bytes(b"serialized engine" * 50)
    result, meta = publish_entry(
        store, key, "demo/resnet/fp16/h100", {ENGINE_FILE: plan_file, BUILD_LOG_FILE: b"log"},
        accuracy={"state": "accepted", "summary": "max abs err 1e-3 <= 1e-2"},
        build_seconds=12.5, device_memory=1 << 20, tensorrt_version="10.13.3.9",
        gpu={"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
        io_tensors=[{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, 224, 224]}],
    )
    assert result.created
    stored = store.read_meta(key.key)
    assert stored == meta
    assert stored["key"] == key.key
    assert stored["spec_id"] == "demo/resnet/fp16/h100"
    assert stored["components"] == key.components
    assert sha256_json(stored["components"]) == key.key
    assert stored["engine_sha256"] == hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert stored["engine_size"] == plan_file.stat().st_size
    assert stored["files"][BUILD_LOG_FILE]["size"] == 3
    assert ACCURACY_FILE not in stored["files"]  # mutable, so not pinned by meta.json
    assert stored["build_seconds"] == 12.5 and stored["device_memory"] == 1 << 20
    assert stored["io_tensors"][0]["name"] == "input"
    assert layout.parse_time(stored["created_at"]) == pytest.approx(time.time(), abs=120)
    assert entry_state(store, key.key) == "accepted"
    assert read_accuracy(store, key.key)["summary"].startswith("max abs err")
    ref = store.read_ref("demo/resnet/fp16/h100")
    assert ref["key"] == key.key and ref["components"] == key.components and ref["model"] == key.model


def test_publish_twice_keeps_the_first(store):
    key = engine_key("twice")
    first, _ = publish_entry(store, key, "m/a/fp16/t", {ENGINE_FILE: b"one"})
    second, meta = publish_entry(store, key, "m/b/fp16/t", {ENGINE_FILE: b"two"})
    assert first.created and not second.created and not second.identical
    assert meta["spec_id"] == "m/a/fp16/t"
    assert store.read_ref("m/b/fp16/t")["key"] == key.key  # the second spec still points at it


def test_entry_states(store):
    key = engine_key("states").key
    assert entry_state(store, key) is None
    store.put_entry(key, {ENGINE_FILE: b"e"}, meta_for(key, b"e"))
    assert entry_state(store, key) == "unverified"
    store.replace_file(key, ACCURACY_FILE, json.dumps({"state": "rejected"}).encode())
    assert entry_state(store, key) == "rejected"
    store.replace_file(key, ACCURACY_FILE, json.dumps({"state": "bogus"}).encode())
    with pytest.raises(CacheError):
        entry_state(store, key)


def test_record_ref(store):
    key = engine_key("ref")
    record = record_ref(store, "m/model/int8/lab", key)
    assert store.read_ref("m/model/int8/lab") == record
    assert record["key"] == key.key and record["spec_id"] == "m/model/int8/lab"


# --------------------------------------------------------------------------- open_store


def test_open_store_local_paths(tmp_path, monkeypatch):
    assert isinstance(open_store(tmp_path), LocalStore)
    assert open_store(f"file://{tmp_path}").root == tmp_path
    monkeypatch.setenv("TRTOPS_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_url() == str(tmp_path / "env-cache")
    assert open_store().root == tmp_path / "env-cache"
    monkeypatch.delenv("TRTOPS_CACHE")
    assert default_cache_url() == "cache"


def test_open_store_unknown_scheme():
    with pytest.raises(InputError) as info:
        open_store("ftp://host/cache")
    assert "s3://" in info.value.hint


def test_open_store_dispatches_registered_backends(monkeypatch, tmp_path):
    module = type(sys)("trtops_test_backend")
    module.open_memory = lambda url: ("opened", url)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trtops_test_backend", module)
    monkeypatch.setitem(BACKENDS, "mem", "trtops_test_backend:open_memory")
    assert open_store("mem://bucket/prefix") == ("opened", "mem://bucket/prefix")


def test_ensure_ref_writes_only_changes(store):
    key, other = engine_key("a"), engine_key("b")
    assert ensure_ref(store, "m/model/fp16/t", key) is True
    before = (store.root / "refs/m/model/fp16/t.json").stat().st_mtime_ns
    assert ensure_ref(store, "m/model/fp16/t", key) is False
    assert (store.root / "refs/m/model/fp16/t.json").stat().st_mtime_ns == before
    assert ensure_ref(store, "m/model/fp16/t", other) is True
    assert store.read_ref("m/model/fp16/t")["key"] == other.key
