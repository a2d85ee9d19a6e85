"""The contract every engine-cache backend passes (the EntryStore protocol in
trtops/cache/store.py; stores built on trtops.cache.entry_store.ObjectEntries expose their
transport as ``store.objects``, which some tests use to plant raw objects). Reuse it for a
backend::

    import sys; sys.path.insert(0, "<repo>/tests/unit/cache")
    from contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, ...):            # an empty store
            ...

        def make_partial_entry(self, store, key):
            ...                          # write engine.plan of `key` without meta.json

and, when ``open_store(store.url)`` does not reopen the same store in another process,
override the ``opener`` fixture with a picklable zero-argument callable that does.

Processes are started with the 'spawn' method (no state inherited from pytest), so the
worker functions below are module-level and ``opener`` must be picklable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import time
from typing import Any

import pytest

from trtops.cache import open_store
from trtops.cache.entries import json_bytes
from trtops.cache.store import (
    ACCURACY_FILE,
    BUILD_LOG_FILE,
    ENGINE_FILE,
    META_FILE,
    PutResult,
)
from trtops.errors import CacheError, TrtopsError

WRITERS = 8


def key_of(text: str) -> str:
    """A valid 64-hex key derived from a label."""
    return hashlib.sha256(text.encode()).hexdigest()


def meta_for(key: str, engine: bytes, **extra: Any) -> dict[str, Any]:
    meta = {"key": key, "engine_sha256": hashlib.sha256(engine).hexdigest(), "engine_size": len(engine)}
    meta.update(extra)
    return meta


# --------------------------------------------------------------------------- process workers


def _put_worker(opener, key: str, engine: bytes, ready, go, results) -> None:
    store = opener()
    ready.put(os.getpid())
    go.wait(60)
    try:
        result = store.put_entry(key, {ENGINE_FILE: engine, BUILD_LOG_FILE: b"log of " + engine[:8]},
                                 meta_for(key, engine, writer=os.getpid()))
        results.put(("ok", engine, result.created, result.identical))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", engine, repr(exc), None))


def _lock_holder(opener, name: str, held, release) -> None:
    store = opener()
    with store.lock(name, timeout=30):
        held.set()
        release.wait(60)


# --------------------------------------------------------------------------- the contract


class StoreContract:
    """pytest tests for an EntryStore; subclasses give the ``store`` fixture."""

    @pytest.fixture
    def store(self):  # pragma: no cover - always overridden
        raise NotImplementedError("give a `store` fixture")

    @pytest.fixture
    def opener(self, store):
        """A picklable callable that opens the same store in another process."""
        return functools.partial(open_store, store.url)

    def make_partial_entry(self, store, key: str) -> None:  # pragma: no cover
        """Leave the files of an entry without its meta.json (an interrupted write)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ put / read

    def test_put_then_read(self, store):
        key = key_of("put")
        engine = b"\x00plan bytes\xff" * 100
        result = store.put_entry(key, {ENGINE_FILE: engine, BUILD_LOG_FILE: b"built"}, meta_for(key, engine))
        assert result == PutResult(created=True, identical=True)
        assert store.has_entry(key)
        assert store.read_meta(key)["engine_sha256"] == hashlib.sha256(engine).hexdigest()
        assert store.read_file(key, ENGINE_FILE) == engine
        assert store.read_file(key, BUILD_LOG_FILE) == b"built"
        assert store.read_file(key, ACCURACY_FILE) is None
        assert key in set(store.list_keys())

    def test_put_from_path(self, store, tmp_path):
        key = key_of("path")
        source = tmp_path / "engine.plan"
        source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # more than one copy chunk
        engine = source.read_bytes()
        assert store.put_entry(key, {ENGINE_FILE: source}, meta_for(key, engine)).created
        assert store.read_file(key, ENGINE_FILE) == engine

    def test_missing_entry(self, store):
        key = key_of("missing")
        assert not store.has_entry(key)
        assert store.read_meta(key) is None
        assert store.read_file(key, ENGINE_FILE) is None
        assert key not in set(store.list_keys())

    def test_put_is_create_only(self, store):
        key = key_of("create-only")
        first, second = b"first engine", b"second engine"
        assert store.put_entry(key, {ENGINE_FILE: first}, meta_for(key, first)).created
        result = store.put_entry(key, {ENGINE_FILE: second}, meta_for(key, second))
        assert result == PutResult(created=False, identical=False)
        assert store.read_file(key, ENGINE_FILE) == first
        assert store.read_meta(key)["engine_sha256"] == hashlib.sha256(first).hexdigest()

    def test_put_same_engine_again_is_identical(self, store):
        key = key_of("identical")
        engine = b"same engine"
        assert store.put_entry(key, {ENGINE_FILE: engine}, meta_for(key, engine)).created
        assert store.put_entry(key, {ENGINE_FILE: engine}, meta_for(key, engine)) == PutResult(False, True)

    def test_concurrent_put_from_processes_leaves_one_valid_entry(self, store, opener):
        key = key_of("race")
        ctx = multiprocessing.get_context("spawn")
        ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        engines = [f"engine of writer {i} ".encode() * (1000 + i) for i in range(WRITERS)]
        workers = [ctx.Process(target=_put_worker, args=(opener, key, engine, ready, go, results))
                   for engine in engines]
        for worker in workers:
            worker.start()
        try:
            for _ in workers:
                ready.get(timeout=120)
            go.set()  # all writers start their put at once
            outcomes = [results.get(timeout=120) for _ in workers]
        finally:
            for worker in workers:
                worker.join(timeout=60)
        errors = [o for o in outcomes if o[0] == "error"]
        assert not errors, errors
        created = [o for o in outcomes if o[2]]
        assert len(created) == 1, outcomes
        winner = created[0][1]
        assert all(o[3] is False for o in outcomes if not o[2])  # different engines
        stored = store.read_file(key, ENGINE_FILE)
        meta = store.read_meta(key)
        assert stored == winner
        assert meta["engine_sha256"] == hashlib.sha256(stored).hexdigest()
        assert store.read_file(key, BUILD_LOG_FILE) == b"log of " + winner[:8]
        assert list(store.list_keys()).count(key) == 1

    def test_entry_without_meta_is_invisible(self, store):
        key = key_of("partial")
        self.make_partial_entry(store, key)
        assert not store.has_entry(key)
        assert store.read_meta(key) is None
        assert key not in set(store.list_keys())
        engine = b"complete engine"
        assert store.put_entry(key, {ENGINE_FILE: engine}, meta_for(key, engine)).created
        assert store.read_file(key, ENGINE_FILE) == engine

    def test_the_listing_names_each_complete_entry_with_its_files(self, store):
        # What `pull` relies on to skip asking for a mutable file the listing lacks.
        key, bare, partial = key_of("listed"), key_of("bare"), key_of("listed-partial")
        store.put_entry(key, {ENGINE_FILE: b"e", BUILD_LOG_FILE: b"l"}, meta_for(key, b"e"))
        store.put_entry(bare, {ENGINE_FILE: b"b"}, meta_for(bare, b"b"))
        store.replace_file(key, ACCURACY_FILE, b'{"state": "accepted"}')
        self.make_partial_entry(store, partial)
        listed = store.list_entry_files()
        assert list(listed) == sorted([key, bare])  # sorted; no partial entry
        assert listed[key] == {ENGINE_FILE, BUILD_LOG_FILE, ACCURACY_FILE, META_FILE}
        assert listed[bare] == {ENGINE_FILE, META_FILE}
        assert list(listed) == list(store.list_keys())

    def test_meta_is_not_a_file_argument(self, store):
        key = key_of("meta-file")
        with pytest.raises(ValueError):
            store.put_entry(key, {ENGINE_FILE: b"x", META_FILE: b"{}"}, meta_for(key, b"x"))

    # ------------------------------------------------------------------ fetch / replace / delete

    def test_fetch_file_atomic(self, store, tmp_path):
        key = key_of("fetch")
        engine = os.urandom(2 * 1024 * 1024 + 5)
        store.put_entry(key, {ENGINE_FILE: engine}, meta_for(key, engine))
        dest = tmp_path / "out" / "model.plan"
        dest.parent.mkdir()
        dest.write_bytes(b"old content")
        assert store.fetch_file(key, ENGINE_FILE, dest) is True
        assert dest.read_bytes() == engine
        assert sorted(p.name for p in dest.parent.iterdir()) == ["model.plan"]  # no temp files left

    def test_fetch_missing_leaves_dest_alone(self, store, tmp_path):
        key = key_of("fetch-missing")
        dest = tmp_path / "out" / "model.plan"
        dest.parent.mkdir()
        dest.write_bytes(b"keep me")
        assert store.fetch_file(key, ENGINE_FILE, dest) is False
        store.put_entry(key, {ENGINE_FILE: b"e"}, meta_for(key, b"e"))
        assert store.fetch_file(key, BUILD_LOG_FILE, dest) is False
        assert dest.read_bytes() == b"keep me"
        assert sorted(p.name for p in dest.parent.iterdir()) == ["model.plan"]

    def test_replace_file(self, store):
        key = key_of("replace")
        store.put_entry(key, {ENGINE_FILE: b"e"}, meta_for(key, b"e"))
        store.replace_file(key, ACCURACY_FILE, json.dumps({"state": "rejected"}).encode())
        store.replace_file(key, ACCURACY_FILE, json.dumps({"state": "accepted"}).encode())
        assert json.loads(store.read_file(key, ACCURACY_FILE)) == {"state": "accepted"}
        assert store.read_file(key, ENGINE_FILE) == b"e"

    def test_replace_immutable_file_refused(self, store):
        key = key_of("immutable")
        store.put_entry(key, {ENGINE_FILE: b"e"}, meta_for(key, b"e"))
        for name in (ENGINE_FILE, META_FILE):
            with pytest.raises(ValueError):
                store.replace_file(key, name, b"x")
        assert store.read_file(key, ENGINE_FILE) == b"e"

    def test_replace_file_of_missing_entry(self, store):
        with pytest.raises(CacheError):
            store.replace_file(key_of("nothing"), ACCURACY_FILE, b"{}")

    def test_delete(self, store):
        key, other = key_of("delete"), key_of("keep")
        store.put_entry(key, {ENGINE_FILE: b"e", BUILD_LOG_FILE: b"l"}, meta_for(key, b"e"))
        store.put_entry(other, {ENGINE_FILE: b"o"}, meta_for(other, b"o"))
        store.delete_entry(key)
        assert not store.has_entry(key)
        assert store.read_file(key, ENGINE_FILE) is None
        assert store.read_file(key, BUILD_LOG_FILE) is None
        assert set(store.list_keys()) == {other}
        store.delete_entry(key)  # missing: ignored
        assert store.put_entry(key, {ENGINE_FILE: b"new"}, meta_for(key, b"new")).created
        assert store.read_file(key, ENGINE_FILE) == b"new"

    # ------------------------------------------------------------------ refs

    def test_refs(self, store):
        ref = "vision/resnet50/fp16/h100"
        assert store.read_ref(ref) is None
        store.write_ref(ref, {"key": key_of("a")})
        assert store.read_ref(ref) == {"key": key_of("a")}
        store.write_ref(ref, {"key": key_of("b"), "spec_id": ref})
        assert store.read_ref(ref)["key"] == key_of("b")
        store.write_ref("vision/resnet50/fp32/h100", {"key": key_of("c")})
        listed = dict(store.list_refs())
        assert listed == {ref: {"key": key_of("b"), "spec_id": ref},
                          "vision/resnet50/fp32/h100": {"key": key_of("c")}}

    def test_refs_have_one_encoding_and_any_json_reads(self, store):
        record = {"key": key_of("enc"), "spec_id": "m/enc/fp16/t", "note": "café"}
        store.write_ref("m/enc/fp16/t", record)
        # The same bytes on every backend, so `aws s3 sync` between them changes nothing.
        assert store.objects.get("refs/m/enc/fp16/t.json") == json_bytes(record)
        # Refs written by older versions (S3: json.dumps without a newline, ASCII escapes).
        old = json.dumps(record, indent=2, sort_keys=True).encode()
        store.objects.put("refs/m/old/fp16/t.json", old)
        assert store.read_ref("m/old/fp16/t") == record

    def test_damaged_ref_is_an_error_and_skipped_in_listings(self, store):
        store.write_ref("m/good/fp16/t", {"key": key_of("good")})
        store.objects.put("refs/m/bad/fp16/t.json", b"{not json")
        store.objects.put("refs/m/list/fp16/t.json", b"[1, 2]")
        with pytest.raises(CacheError, match="not valid JSON"):
            store.read_ref("m/bad/fp16/t")
        assert store.read_ref("m/list/fp16/t") is None  # JSON, but not a record
        assert dict(store.list_refs()) == {"m/good/fp16/t": {"key": key_of("good")}}

    @pytest.mark.parametrize("bad", ["../escape/x/y", "a/../../b", "/abs/path", "a//b", ""])
    def test_ref_names_are_checked(self, store, bad):
        with pytest.raises((TrtopsError, ValueError)):
            store.write_ref(bad, {"key": key_of("x")})

    # ------------------------------------------------------------------ timing caches

    def test_timing_cache_round_trip(self, store):
        assert store.read_timing_cache("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3") is None
        blob = os.urandom(70_000)
        store.write_timing_cache("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3", blob)
        assert store.read_timing_cache("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3") == blob
        store.write_timing_cache("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3", b"merged")
        assert store.read_timing_cache("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3") == b"merged"
        assert store.read_timing_cache("8.6.0", "cc9.0-nvidia-h100-80gb-hbm3") is None
        assert store.read_timing_cache("10.13.3.9", "ampere_plus") is None

    def test_list_timing_caches(self, store):
        assert store.list_timing_caches() == []
        store.write_timing_cache("8.6.0", "ampere_plus", b"a")
        store.write_timing_cache("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3", b"b")
        store.objects.put("timing/10.13.3.9/notes.txt", b"not a timing cache")
        assert store.list_timing_caches() == [("10.13.3.9", "cc9.0-nvidia-h100-80gb-hbm3"),
                                              ("8.6.0", "ampere_plus")]

    # ------------------------------------------------------------------ verified fetch

    def test_fetch_file_verifies_sha256(self, store, tmp_path):
        key = key_of("verified")
        engine = os.urandom(100_000)
        store.put_entry(key, {ENGINE_FILE: engine}, meta_for(key, engine))
        dest = tmp_path / "out" / "engine.plan"
        seen = []
        assert store.fetch_file(key, ENGINE_FILE, dest,
                                expected_sha256=hashlib.sha256(engine).hexdigest(),
                                progress=seen.append)
        assert dest.read_bytes() == engine and sum(seen) == len(engine)
        dest.write_bytes(b"keep me")
        with pytest.raises(CacheError, match="sha256 mismatch"):
            store.fetch_file(key, ENGINE_FILE, dest, expected_sha256="0" * 64)
        assert dest.read_bytes() == b"keep me"
        assert sorted(p.name for p in dest.parent.iterdir()) == ["engine.plan"]

    # ------------------------------------------------------------------ locks

    def test_lock_is_exclusive_across_processes(self, store, opener):
        ctx = multiprocessing.get_context("spawn")
        held, release = ctx.Event(), ctx.Event()
        holder = ctx.Process(target=_lock_holder, args=(opener, "timing-10.13.3.9-ampere_plus", held, release))
        holder.start()
        try:
            assert held.wait(120), "the holder process did not get the lock"
            started = time.monotonic()
            with pytest.raises(CacheError):
                with store.lock("timing-10.13.3.9-ampere_plus", timeout=0.3):
                    pass
            assert time.monotonic() - started >= 0.25
            with store.lock("another-name", timeout=5):  # other names are independent
                pass
        finally:
            release.set()
            holder.join(timeout=60)
        with store.lock("timing-10.13.3.9-ampere_plus", timeout=30):
            pass

    def test_lock_is_exclusive_within_a_process(self, store):
        with store.lock("publish", timeout=5):
            with pytest.raises(CacheError):
                with store.lock("publish", timeout=0.1):
                    pass
        with store.lock("publish", timeout=5):
            pass


__all__ = ["StoreContract", "key_of", "meta_for"]
