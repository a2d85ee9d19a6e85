"""The committed lockfile, ``trtops.lock``: which engine each manifest engine is on each
platform it was built for. Its model, reading (as untrusted, hand-merged input) and writing.

Layout: ``trtops.lock`` is a directory beside the manifests holding one file per build
platform, ``trtops.lock/<platform>.json`` (``cc9.0-nvidia-h100-80gb-hbm3-trt10.13.3.9.json``).
One file per platform because CI builds each GPU type in its own job: each job rewrites
only its own file, so the parts of concurrent shards never touch the same lines and git
merges them without conflicts (one file with a section per platform conflicts as soon as
two shards add or change neighbouring sections). A file::

    {
      "format": "trtops.lock",
      "version": 1,
      "platform": {"signature": ..., "gpu": {"name", "compute_capability"}, "tensorrt": ...},
      "engines": {
        "<manifest>/<model>/<precision>/<target>": {
          "key": ..., "components": {...}, "model": {...},
          "engine": {"sha256": ..., "size": ...} | null,     (null: not built yet)
          "accuracy": {"state": ..., "summary": ...} | null,
          "built_at": ...,
          "performance": {"state", "gpu", "latency_ms", "throughput", "cv", "case",
                          "cases": {label: {"median_ms", "cv"}}, "measured_at",
                          "selected": {...}}                  (optional: measured engines)
        }
      }
    }

Written with sorted keys, two-space indent and no timestamps of its own, so the same
engines always give the same bytes and a diff shows exactly the engines that changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.errors import InputError
from trtops.names import is_identifier, is_sha256, try_parse_engine_id

LOCK_NAME = "trtops.lock"
LOCK_FORMAT = "trtops.lock"
LOCK_VERSION = 1
MAX_LOCK_FILE_BYTES = 16 << 20  # a lock is text people review; anything larger is not one

ENTRY_FIELDS = ("key", "components", "model", "engine", "accuracy", "built_at", "performance")


def platform_signature(gpu_name: str, compute_capability: str, tensorrt: str) -> str:
    """The name of a platform's lock file: GPU signature and full TensorRT version."""
    from trtops.keys.engine_key import gpu_signature

    return f"{gpu_signature(gpu_name, compute_capability, 'none')}-trt{tensorrt}"


@dataclass(frozen=True)
class LockPlatform:
    """A platform engines were built on: one GPU model and one TensorRT version."""

    gpu_name: str
    compute_capability: str
    tensorrt: str

    @property
    def signature(self) -> str:
        return platform_signature(self.gpu_name, self.compute_capability, self.tensorrt)

    def describe(self) -> str:
        return f"{self.gpu_name} (cc {self.compute_capability}), TensorRT {self.tensorrt}"

    def to_json(self) -> dict[str, Any]:
        return {"signature": self.signature, "tensorrt": self.tensorrt,
                "gpu": {"name": self.gpu_name, "compute_capability": self.compute_capability}}

    def as_platform(self) -> Any:
        """The :class:`trtops.keys.platform.Platform` to key and match specs for."""
        from trtops.keys.platform import GpuInfo, Platform

        return Platform(tensorrt=self.tensorrt, source="file",
                        gpus=(GpuInfo(index=0, name=self.gpu_name,
                                      compute_capability=self.compute_capability),))

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> LockPlatform | None:
        """The platform that built a cache entry (None when its meta.json does not say)."""
        gpu = meta.get("gpu")
        version = meta.get("tensorrt_version")
        if not (isinstance(gpu, Mapping) and isinstance(version, str) and version
                and isinstance(gpu.get("name"), str) and gpu.get("compute_capability")):
            return None
        return cls(gpu["name"], str(gpu["compute_capability"]), version)

    @classmethod
    def from_platform(cls, platform: Any) -> LockPlatform | None:
        """The lock platform of a :class:`~trtops.keys.platform.Platform` (its first GPU)."""
        if not getattr(platform, "tensorrt", None) or not getattr(platform, "gpus", None):
            return None
        gpu = platform.gpus[0]
        return cls(gpu.name, gpu.compute_capability, platform.tensorrt)


@dataclass
class LockEntry:
    """One engine in the lock: its key, the components behind it and (once built) its
    bytes and accuracy verdict."""

    key: str
    components: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] | None = None  # {"sha256", "size"}; None: not built yet
    accuracy: dict[str, Any] | None = None  # {"state", "summary"}
    built_at: str | None = None
    # the performance gate's numbers and select: fastest's choice (trtops.ops.lock.lock_performance);
    # absent in locks written before the gate, which stay readable
    performance: dict[str, Any] | None = None

    @property
    def sha256(self) -> str | None:
        return (self.engine or {}).get("sha256")

    @property
    def state(self) -> str:
        """accepted | rejected | unverified | pending (not built yet)."""
        if self.engine is None:
            return "pending"
        return str((self.accuracy or {}).get("state") or "unverified")

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in ENTRY_FIELDS}
        if data["performance"] is None:
            del data["performance"]
        return data

    def as_meta(self, platform: LockPlatform) -> dict[str, Any]:
        """A meta.json-shaped view, for :mod:`trtops.cache.compat` (what runs where)."""
        return {"key": self.key, "components": self.components,
                "tensorrt_version": platform.tensorrt,
                "gpu": {"name": platform.gpu_name,
                        "compute_capability": platform.compute_capability}}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], accuracy: Mapping[str, Any] | None,
                  performance: Mapping[str, Any] | None = None) -> LockEntry:
        """The lock entry of a cache entry (its meta.json, parsed accuracy.json and what
        the lock keeps of its perf.json)."""
        summary = None
        if accuracy:
            summary = {"state": accuracy.get("state", "unverified")}
            if accuracy.get("summary"):
                summary["summary"] = str(accuracy["summary"])
        return cls(key=str(meta["key"]), components=dict(meta.get("components") or {}),
                   model=dict(meta.get("model") or {}),
                   engine={"sha256": meta.get("engine_sha256"), "size": meta.get("engine_size")},
                   accuracy=summary or {"state": "unverified"},
                   built_at=meta.get("created_at"),
                   performance=dict(performance) if performance else None)

    @classmethod
    def pending(cls, engine_key: Any) -> LockEntry:
        """A key the manifests give that is not built yet (an :class:`EngineKey`)."""
        return cls(key=engine_key.key, components=dict(engine_key.components),
                   model=dict(engine_key.model))


@dataclass
class LockSection:
    """One platform's file: its engines by engine id."""

    platform: LockPlatform
    engines: dict[str, LockEntry] = field(default_factory=dict)
    path: Path | None = None  # where it was read from

    def to_json(self) -> dict[str, Any]:
        return {"format": LOCK_FORMAT, "version": LOCK_VERSION,
                "platform": self.platform.to_json(),
                "engines": {spec_id: entry.to_json()
                            for spec_id, entry in sorted(self.engines.items())}}

    def to_bytes(self) -> bytes:
        """The one encoding: sorted keys, two-space indent, a final newline."""
        return (json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
                + "\n").encode("utf-8")


@dataclass
class Lock:
    """Every platform section of a lock (a ``trtops.lock`` directory or single files)."""

    path: Path
    sections: dict[str, LockSection] = field(default_factory=dict)  # by platform signature

    def keys(self) -> set[str]:
        """Every engine key the lock names (what retention must keep)."""
        return {entry.key for section in self.sections.values()
                for entry in section.engines.values()}

    def entries(self) -> Iterator[tuple[LockSection, str, LockEntry]]:
        for signature in sorted(self.sections):
            section = self.sections[signature]
            for spec_id in sorted(section.engines):
                yield section, spec_id, section.engines[spec_id]

    def section(self, platform: LockPlatform) -> LockSection:
        """The section of ``platform`` (created empty when absent)."""
        return self.sections.setdefault(platform.signature, LockSection(platform))


# --------------------------------------------------------------------------- where


def lock_path_for(paths: Sequence[str | os.PathLike[str]], explicit: str | None = None) -> Path:
    """The lock of a set of manifests: ``--lockfile`` when given, else ``trtops.lock`` in
    the directory that holds them.

    Raises:
        InputError: when the manifests live in several directories (one lock per project).
    """
    if explicit:
        return Path(explicit)
    folders = {Path(p) if Path(p).is_dir() else Path(p).parent for p in paths}
    if not folders:
        folders = {Path(".")}
    if len(folders) > 1:
        raise InputError(
            "the manifests are in several directories: "
            + ", ".join(sorted(str(f) for f in folders)) + "; which lock is meant?",
            hint="name it: --lockfile DIR/trtops.lock")
    return next(iter(folders)) / LOCK_NAME


def manifest_scope(specs: Iterable[Any]) -> set[str]:
    """Manifest names (file stems) of specs: a command on some manifests touches only their
    engines in the lock, never another manifest's."""
    return {spec.manifest_name for spec in specs}


def in_scope(spec_id: str, scope: set[str] | None) -> bool:
    if scope is None:
        return True
    parsed = try_parse_engine_id(spec_id)
    return parsed is not None and parsed.manifest in scope


# --------------------------------------------------------------------------- reading


def _fail(path: Path, message: str, line: int | None = None) -> InputError:
    where = f"{path}:{line}" if line else str(path)
    return InputError(f"{where}: {message}",
                      hint="the lock is written by `trtops lock` and `trtops apply`; fix the "
                           "file or write it again with `trtops lock`")


def _check_entry(path: Path, spec_id: Any, data: Any) -> LockEntry:
    where = f"engines.{spec_id}"
    parsed = try_parse_engine_id(spec_id) if isinstance(spec_id, str) else None
    if parsed is None or not all(is_identifier(part) for part in parsed[1:]):
        raise _fail(path, f"engines: {str(spec_id)[:80]!r} is not manifest/model/precision/target")
    if not isinstance(data, Mapping):
        raise _fail(path, f"{where}: must be an object")
    unknown = sorted(set(data) - set(ENTRY_FIELDS))
    if unknown:
        raise _fail(path, f"{where}: unknown field {unknown[0]!r}")
    if not is_sha256(data.get("key")):
        raise _fail(path, f"{where}.key: not an engine key (64 lowercase hex digits)")
    components = data.get("components")
    if not isinstance(components, Mapping):
        raise _fail(path, f"{where}.components: must be an object")
    from trtops.keys.engine_key import key_of

    try:
        matches = key_of(dict(components)) == data["key"]
    except (TypeError, ValueError):
        matches = False
    if not matches:
        raise _fail(path, f"{where}.components: do not hash to the key (edited by hand?)")
    engine = data.get("engine")
    if engine is not None:
        if not isinstance(engine, Mapping) or not is_sha256(engine.get("sha256")):
            raise _fail(path, f"{where}.engine.sha256: not a sha256 digest")
        size = engine.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _fail(path, f"{where}.engine.size: not a byte count")
    for name in ("model", "accuracy", "performance"):
        if data.get(name) is not None and not isinstance(data.get(name), Mapping):
            raise _fail(path, f"{where}.{name}: must be an object")
    accuracy = data.get("accuracy")
    if accuracy is not None and not isinstance(accuracy.get("state"), str):
        raise _fail(path, f"{where}.accuracy.state: missing")
    return LockEntry(key=data["key"], components=dict(components),
                     model=dict(data.get("model") or {}),
                     engine=dict(engine) if engine is not None else None,
                     accuracy=dict(accuracy) if accuracy is not None else None,
                     built_at=data.get("built_at") if isinstance(data.get("built_at"), str) else None,
                     performance=dict(data["performance"]) if data.get("performance") else None)


def read_section(path: Path) -> LockSection:
    """Read one platform file of a lock.

    Raises:
        InputError: naming the file (and line) for anything that is not a lock section:
            bad JSON (a merge conflict left in it), another format or version, bad fields.
    """
    try:
        if path.stat().st_size > MAX_LOCK_FILE_BYTES:
            raise _fail(path, f"larger than {MAX_LOCK_FILE_BYTES >> 20} MiB: not a lock file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        conflict = "<<<<<<<" in text
        raise _fail(path, f"column {exc.colno}: not valid JSON ({exc.msg})"
                    + ("; it holds git conflict markers: run `trtops lock` to write it again"
                       if conflict else ""), exc.lineno) from None
    if not isinstance(data, Mapping) or data.get("format") != LOCK_FORMAT:
        raise _fail(path, f"format: not a trtops lock file (expected {LOCK_FORMAT!r})")
    if data.get("version") != LOCK_VERSION:
        raise _fail(path, f"version: {data.get('version')!r} is not supported (this trtops "
                          f"reads version {LOCK_VERSION}; upgrade trtops)")
    platform = data.get("platform")
    gpu = platform.get("gpu") if isinstance(platform, Mapping) else None
    if not (isinstance(gpu, Mapping) and isinstance(gpu.get("name"), str)
            and isinstance(gpu.get("compute_capability"), str)
            and isinstance(platform.get("tensorrt"), str)):
        raise _fail(path, "platform: needs gpu.name, gpu.compute_capability and tensorrt")
    section = LockSection(LockPlatform(gpu["name"], gpu["compute_capability"],
                                       platform["tensorrt"]), path=path)
    engines = data.get("engines")
    if not isinstance(engines, Mapping):
        raise _fail(path, "engines: must be an object")
    for spec_id, entry in engines.items():
        section.engines[spec_id] = _check_entry(path, spec_id, entry)
    return section


def section_files(path: Path) -> list[Path]:
    """The platform files of a lock directory (or the one file given)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    return [path]


def read_lock(path: str | os.PathLike[str], *, missing_ok: bool = False) -> Lock:
    """Read a lock: a ``trtops.lock`` directory, or one platform file of one.

    Args:
        path: The lock.
        missing_ok: An absent lock is an empty one (else an error).

    Raises:
        InputError: for an absent lock (unless ``missing_ok``) or a bad file.
    """
    path = Path(path)
    lock = Lock(path)
    if not path.exists():
        if missing_ok:
            return lock
        raise InputError(f"no lock at {path}",
                         hint="write it with `trtops lock` (from the engines in the cache)")
    for file in section_files(path):
        section = read_section(file)
        if section.platform.signature in lock.sections:
            raise _fail(file, f"platform: {section.platform.signature} is locked twice "
                              f"(also in {lock.sections[section.platform.signature].path})")
        lock.sections[section.platform.signature] = section
    return lock


def read_locks(paths: Iterable[str | os.PathLike[str]]) -> list[Lock]:
    """Read several locks (``gc --keep-lock``)."""
    return [read_lock(p) for p in paths]


# --------------------------------------------------------------------------- writing


def write_section(lock_path: Path, section: LockSection) -> Path | None:
    """Write (or, when it has no engines, remove) one platform's file of a lock directory,
    atomically (temporary file + rename). Returns the file, or None when removed."""
    lock_path.mkdir(parents=True, exist_ok=True)
    target = lock_path / f"{section.platform.signature}.json"
    if not section.engines:
        target.unlink(missing_ok=True)
        return None
    data = section.to_bytes()
    try:
        if target.read_bytes() == data:
            return target  # unchanged: leave the file (and its mtime) alone
    except OSError:
        pass
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


__all__ = [
    "LOCK_FORMAT", "LOCK_NAME", "LOCK_VERSION", "Lock", "LockEntry", "LockPlatform",
    "LockSection", "in_scope", "lock_path_for", "manifest_scope", "platform_signature",
    "read_lock", "read_locks", "read_section", "section_files", "write_section",
]
