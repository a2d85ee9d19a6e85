"""Remotes and entries for the tests of `trtops pull`'s pipeline (selection overlapped with
downloads, speculative downloads): a directory store as the remote that records its
requests and can hold any of them until an event, entries published as `apply` would.

Import as ``from pull_helpers import add_entry`` (tests/ is on sys.path through
tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from trtops.cache import journal
from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cache.store import BUILD_LOG_FILE, ENGINE_FILE
from trtops.keys.canonical import sha256_json
from trtops.keys.engine_key import EngineKey, key_components, tensorrt_component
from trtops.keys.platform import GpuInfo, Platform

TRT = "10.13.3.9"
H100 = ("NVIDIA H100 80GB HBM3", "9.0")
L4 = ("NVIDIA L4", "8.9")
HERE = Platform(tensorrt=TRT, gpus=(GpuInfo(0, *H100),), source="flags")


def write_perf(store: LocalStore, key: str) -> bytes:
    """A perf.json as the performance gate writes it, stored the way `trtops bench` does
    (after meta.json: the file is mutable); its bytes."""
    from report_helpers import perf_json

    from trtops.cache.entries import json_bytes
    from trtops.cache.entries import write_perf as store_perf

    document = perf_json(1.0)
    store_perf(store, key, document)
    return json_bytes(document)


def add_entry(store: LocalStore, label: str, *, spec_id: str | None = None,
              gpu: tuple[str, str] = H100, state: str = "accepted",
              created_at: str = "2026-01-01T00:00:00Z") -> str:
    from trtops.keys.engine_key import gpu_signature

    components = key_components(model_digest=hashlib.sha256(label.encode()).hexdigest(),
                                build={"precision": "fp16"}, tensorrt=tensorrt_component(TRT, False),
                                gpu=gpu_signature(gpu[0], gpu[1], "none"))
    key = EngineKey(key=sha256_json(components), components=components,
                    model={"digest": components["model_digest"], "onnx_sha256": "0" * 64,
                           "external_data": {}, "size": 10})
    publish_entry(store, key, spec_id or f"m/{label}/fp16/h100",
                  {ENGINE_FILE: label.encode() * 1000, BUILD_LOG_FILE: b"log"},
                  accuracy=None if state == "unverified" else {"state": state, "summary": state},
                  tensorrt_version=TRT,
                  gpu={"name": gpu[0], "compute_capability": gpu[1]}, created_at=created_at)
    return key.key


class Recording:
    """A remote (a directory store) that records its requests in order, can hold a read
    (``hold``, meta.json included) or a download (``gate``) until an event is set, tells
    when a download starts (``on_fetch``) and can fail one (``fail``)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.url = store.url
        self.events: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.hold: dict[tuple[str, str], threading.Event] = {}
        self.held_until: dict[tuple[str, str], bool] = {}
        self.on_fetch: dict[tuple[str, str], threading.Event] = {}
        self.gate: dict[tuple[str, str], threading.Event] = {}
        self.fail: dict[tuple[str, str], Exception] = {}

    def record(self, what: str, key: str, name: str) -> None:
        with self.lock:
            self.events.append((what, key, name))

    def list_keys(self):
        self.record("list", "", "")
        return self.store.list_keys()

    def held(self, key: str, name: str) -> None:
        event = self.hold.get((key, name))
        if event is not None:
            # Not a timing assumption: when what it waits for would only happen after
            # this read, it waits in vain (a hang guard, not a bound), and says so.
            self.held_until[(key, name)] = event.wait(timeout=20)

    def read_meta(self, key: str) -> Any:
        self.held(key, "meta.json")
        self.record("read", key, "meta.json")
        return self.store.read_meta(key)

    def read_file(self, key: str, name: str) -> Any:
        self.held(key, name)
        self.record("read", key, name)
        return self.store.read_file(key, name)

    def fetch_file(self, key: str, name: str, dest: Path, **options: Any) -> bool:
        self.record("fetch", key, name)
        event = self.on_fetch.get((key, name))
        if event is not None:
            event.set()
        gate = self.gate.get((key, name))
        if gate is not None:
            assert gate.wait(timeout=300), f"{name} of {key[:12]} was never let through"
        failure = self.fail.get((key, name))
        if failure is not None:
            raise failure
        return self.store.fetch_file(key, name, dest, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def journaled_at_each_adoption(node: LocalStore) -> list[list[str]]:
    """Filled as ``node`` adopts pulled entries: the keys its pull journals named at that
    moment (sorted), one list per adoption."""
    import json

    seen: list[list[str]] = []
    original = node.adopt_entry

    def adopt(key: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(sorted(k for path in (node.root / journal.JOURNAL_DIR).glob("*.json")
                           for k in json.loads(path.read_text())["keys"]))
        return original(key, *args, **kwargs)

    node.adopt_entry = adopt  # type: ignore[method-assign]
    return seen


def record_adoptions(node: LocalStore, remote: Recording) -> None:
    """Each entry ``node`` adopts is recorded in ``remote``'s events as ("adopt", key, ""),
    so tests can tell what was read or fetched before it became visible."""
    original = node.adopt_entry

    def adopt(key: str, *args: Any, **kwargs: Any) -> Any:
        remote.record("adopt", key, "")
        return original(key, *args, **kwargs)

    node.adopt_entry = adopt  # type: ignore[method-assign]
