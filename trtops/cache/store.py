"""The engine-cache store protocol shared by the local filesystem and remote backends.

An *entry* is a directory-like group of files under one engine key:
``engine.plan``, ``meta.json`` (written last: an entry without it is not an entry),
optionally ``accuracy.json``, ``perf.json``, ``build.log``, ``layers.json``, ``calibration.cache``.
Entries are content-addressed and created once (create-only); only ``accuracy.json`` and
``perf.json`` may be replaced later (``trtops verify`` with new tolerances, ``trtops bench``),
atomically.

*Refs* remember the last key per logical engine (manifest/model/precision/target) so the
planner can explain what changed. *Timing caches* are keyed by TensorRT version and GPU
signature and merged by the builder.

The protocol is implemented once, over an object transport, by
:class:`trtops.cache.entry_store.ObjectEntries`; the backends (:mod:`trtops.cache.local`,
:mod:`trtops.cache.s3`) add only what their medium needs. Every backend passes the
contract suite in ``tests/unit/cache/contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from trtops.names import ENGINE_FILE

META_FILE = "meta.json"
ACCURACY_FILE = "accuracy.json"
PERF_FILE = "perf.json"  # the performance gate's measurement and verdict (trtops.perf)
BUILD_LOG_FILE = "build.log"
LAYERS_FILE = "layers.json"
CALIBRATION_FILE = "calibration.cache"
ENTRY_FILES = (ENGINE_FILE, META_FILE, ACCURACY_FILE, PERF_FILE, BUILD_LOG_FILE, LAYERS_FILE,
               CALIBRATION_FILE)
#: Files that meta.json records but an entry may lack: the logs, which trtops itself never
#: reads (they are for people on the build side), so ``trtops pull`` leaves them on the
#: remote unless ``--with-logs`` (one request less per entry). Every check of an entry
#: against meta.json accepts their absence and still refuses a present one whose bytes
#: differ; ``push`` of an entry without them pushes it without them.
OPTIONAL_FILES = frozenset({BUILD_LOG_FILE})


@dataclass(frozen=True)
class PutResult:
    """Outcome of a create-only write."""

    created: bool  # False: an entry with this key already existed
    identical: bool  # when not created: the existing engine has the same sha256


@runtime_checkable
class EntryStore(Protocol):
    """What every cache backend offers. Keys are 64 lowercase hex digits."""

    url: str  # human-readable location, e.g. /path/to/cache or s3://bucket/prefix

    def has_entry(self, key: str) -> bool:
        """True when the entry is complete (its meta.json exists)."""

    def read_meta(self, key: str) -> dict | None:
        """The entry's meta.json, or None when there is no complete entry."""

    def list_keys(self) -> Iterator[str]:
        """Keys of all complete entries."""

    def list_entry_files(self) -> dict[str, frozenset[str]]:
        """Complete entries, each with the names of the files it had when it was listed
        (one listing): a file absent here was absent then, so a reader may skip asking."""

    def read_file(self, key: str, name: str) -> bytes | None:
        """One file of an entry, or None when absent."""

    def fetch_file(self, key: str, name: str, dest: Path, *, expected_sha256: str | None = None,
                   progress: Callable[[int], None] | None = None, fsync: bool = True,
                   timings: dict[str, float] | None = None) -> bool:
        """Stream one file of an entry to ``dest`` atomically, renamed into place only when
        its sha256 is ``expected_sha256`` (when given); False when absent."""

    def put_entry(self, key: str, files: Mapping[str, Path | bytes], meta: dict, *,
                  progress: Callable[[int], None] | None = None,
                  digests: Mapping[str, str] | None = None, move: bool = False) -> PutResult:
        """Create an entry from files (paths or bytes) and meta, create-only and atomically:
        meta.json is written last; concurrent writers leave exactly one entry."""

    def replace_file(self, key: str, name: str, data: bytes) -> None:
        """Atomically replace a mutable file of an existing entry (accuracy.json, perf.json)."""

    def delete_entry(self, key: str) -> None:
        """Remove an entry (gc); missing entries are ignored."""

    def read_ref(self, ref: str) -> dict | None:
        """The last-key record of a logical engine (``manifest/model/precision/target``)."""

    def write_ref(self, ref: str, data: dict) -> None:
        """Atomically write a ref record."""

    def list_refs(self) -> Iterator[tuple[str, dict]]:
        """All refs with their records."""

    def read_timing_cache(self, tensorrt: str, gpu_signature: str) -> bytes | None:
        """The serialized timing cache for a TensorRT version and GPU signature."""

    def write_timing_cache(self, tensorrt: str, gpu_signature: str, data: bytes) -> None:
        """Atomically replace the timing cache (callers merge under :meth:`lock`)."""

    def list_timing_caches(self) -> list[tuple[str, str]]:
        """(tensorrt, gpu_signature) of every timing cache."""

    def lock(self, name: str, timeout: float = 600.0):
        """A context manager holding an exclusive named lock across processes."""
