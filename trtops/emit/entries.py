"""Cache entries made ready for loaders, validated once for every loader: a ref to a valid
key, an entry with meta.json, an accepted accuracy state (``unverified`` only when asked),
the engine's I/O, and an engine file whose sha256 is the one meta.json records.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtops.engine_io import EngineIO, TensorIO
from trtops.errors import ExitCode
from trtops.names import ENGINE_FILE, EngineId, is_sha256, parse_engine_id


@dataclass(frozen=True)
class EmitItem:
    """One engine to emit loaders for."""

    spec_id: str  # manifest/model/precision/target
    key: str
    loaders: tuple[str, ...]
    # The model's default loader on its target (select: fastest chose this precision).
    default: bool = False


@dataclass(frozen=True)
class Entry:
    """An engine every loader may be given: checked, with its engine file at hand."""

    spec_id: str
    engine: EngineId
    key: str
    meta: Mapping[str, Any]
    io: EngineIO
    engine_file: Path  # sha256 verified against meta.json
    loaders: tuple[str, ...]
    default: bool = False  # select: fastest chose it (trtops.ops.select)

    @property
    def sha256(self) -> str:
        return str(self.meta["engine_sha256"])

    @property
    def gpu(self) -> Mapping[str, Any]:
        return self.meta.get("gpu") or {}


@dataclass(frozen=True)
class Rejected:
    """An item no loader gets, with why (a sentence for the user) and its exit code."""

    spec_id: str
    key: str
    reason: str
    exit_code: ExitCode


def name_part(text: str) -> str:
    """``text`` made usable inside an identifier (e.g. a manifest name put in front of a
    module or model name that two manifests share)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "m"
    return name if not name[0].isdigit() else f"m_{name}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def engine_io(meta: Mapping[str, Any]) -> EngineIO | None:
    """The engine's I/O from meta.json: ``io`` (tensors and profiles), else ``io_tensors``
    (tensors only: the Python loader then reads the profiles from the engine)."""
    if meta.get("io"):
        return EngineIO.from_json(meta["io"])
    tensors = meta.get("io_tensors")
    if tensors:
        return EngineIO(tuple(TensorIO(t["name"], t["mode"], t["dtype"],
                                       tuple(int(d) for d in t["shape"])) for t in tensors), ())
    return None


class EngineFiles:
    """Engine files of entries: the cache's own file for a local cache, else a copy
    fetched into a temporary directory (removed by :meth:`close`)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.local = hasattr(store, "entry_dir")
        self._tmp: Path | None = None

    def path(self, key: str) -> Path | None:
        if self.local:
            path = Path(self.store.entry_dir(key)) / ENGINE_FILE
            return path if path.is_file() else None
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="trtops-emit-"))
        path = self._tmp / f"{key}.plan"
        if path.is_file() or self.store.fetch_file(key, ENGINE_FILE, path):
            return path
        return None

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def validate(store: Any, item: EmitItem, files: EngineFiles, *,
             include_unverified: bool = False) -> Entry | Rejected:
    """Check one item against the cache.

    Args:
        store: the engine cache.
        item: spec id, key from its ref, loaders wanted.
        files: where engine files are read from (or fetched to).
        include_unverified: accept engines whose accuracy was never checked.

    Returns:
        The entry, or why no loader may have it.
    """
    from trtops.cache import layout
    from trtops.cache.entries import read_accuracy

    def reject(reason: str, code: ExitCode = ExitCode.USER_ERROR) -> Rejected:
        return Rejected(item.spec_id, item.key, reason, code)

    engine_id = parse_engine_id(item.spec_id)
    if not item.key:
        return reject("not built: the cache has no ref for it (run `trtops apply` or "
                      "`trtops pull`)")
    if not is_sha256(item.key):
        return reject("its ref names no valid engine key")
    from trtops.cache.entry_schema import EntryInvalid, check_meta
    from trtops.errors import CacheError, RemoteError

    damaged = ("the cache entry is damaged: {} (run `trtops cache verify --delete`, then "
               "`trtops apply` or `trtops pull`)")
    try:
        meta = store.read_meta(item.key)
        if meta is None:
            return reject("not built: no entry in the cache (run `trtops apply` or "
                          "`trtops pull`)")
        check_meta(meta)
        state = layout.state_from_accuracy(read_accuracy(store, item.key))
    except EntryInvalid as exc:
        return reject(damaged.format(exc.reason))
    except CacheError as exc:
        if isinstance(exc, RemoteError):
            raise  # the store is unreachable: not this entry's fault
        return reject(damaged.format(exc.message))
    if state == "rejected":
        return reject("its accuracy check failed (see `trtops status`); loaders are emitted "
                      "only for accepted engines", ExitCode.ACCURACY_FAILED)
    if state == "unverified" and not include_unverified:
        return reject("its accuracy was never checked (run `trtops verify`, or pass "
                      "--include-unverified)")
    io = engine_io(meta)
    if io is None:
        return reject("meta.json records no engine I/O (rebuild it with `trtops apply`)")
    engine = files.path(item.key)
    if engine is None:
        return reject("the entry has no engine.plan (run `trtops cache verify`)")
    # Never hand out (to a Triton repository or beside a loader) bytes that are not the
    # ones that were published and checked.
    expected = meta.get("engine_sha256")
    if not isinstance(expected, str) or not expected or file_sha256(engine) != expected:
        return reject("its engine.plan does not match the sha256 in meta.json: the cache "
                      "entry is corrupt (run `trtops cache verify --delete`, then `trtops "
                      "apply` or `trtops pull`)")
    return Entry(item.spec_id, engine_id, item.key, meta, io, engine, item.loaders,
                 default=item.default)
