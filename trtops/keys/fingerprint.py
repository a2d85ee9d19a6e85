"""Fingerprints: model digests, canonical JSON and the engine key.

The engine key is ``sha256(canonical_json(components))`` with the components::

    schema        KEY_SCHEMA, bumped when the meaning of a component changes
    model_digest  sha256 over the ONNX file's sha256 and every external-data file it
                  references (location and sha256): new weights give a new key
    build         the normalized build config (defaults and empty values omitted, so that
                  spelling a default out gives the same key, and adding a new option with a
                  registered default keeps existing keys)
    tensorrt      the full TensorRT version ("10.13.3.9"); for version-compatible engines
                  only the major version ("10"): such plans run on later versions of the
                  same major, so one engine serves them all (``meta.json`` keeps the
                  full version that built it)
    gpu           the GPU signature (see :func:`gpu_signature`)
    plugins       sorted sha256 of the plugin libraries the engine needs

File digests are streamed (constant memory), hashed on several threads (``hashlib``
releases the GIL) and memoized in ``<cache>/digests.json`` by (path, size, mtime_ns,
inode), so a warm plan stats files instead of reading them.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from trtops.errors import InputError

KEY_SCHEMA = 1

# Values of build-config fields that are left out of the key (see module docstring).
# Whoever adds a field to spec.BuildConfig registers its default here (None and empty
# values are always left out).
BUILD_KEY_DEFAULTS: dict[str, Any] = {
    "builder_optimization_level": 3,
    "hardware_compatibility": "none",
    "version_compatible": False,
}

# A file modified this close to the moment it was hashed may be modified again without its
# mtime changing (coarse kernel timestamps), so such memo entries are re-hashed next time.
RACY_NS = 1_000_000_000

_CHUNK = 1 << 20
_MEMO_VERSION = 1
_MEMO_LIMIT = 20_000


# --------------------------------------------------------------------------- canonical JSON


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    # Called by the C encoder only for what JSON has no type for (tuples are lists already).
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN; tuples as lists,
    dataclasses as dicts. Equal data gives equal bytes whatever the dict order.

    Args:
        value: JSON-ready data (dicts, lists, tuples, str, int, float, bool, None, dataclasses).

    Returns:
        The UTF-8 bytes.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        default=_json_default,
    ).encode("utf-8")


def sha256_json(value: Any) -> str:
    """sha256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


# --------------------------------------------------------------------------- file hashing


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream a file through sha256.

    Args:
        path: The file.

    Returns:
        (hex digest, size in bytes).
    """
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def default_workers() -> int:
    """Hashing threads: one per core (sha256 is CPU-bound), at most 16."""
    return max(1, min(16, os.cpu_count() or 1))


class DigestMemo:
    """sha256 of files memoized by (path, size, mtime_ns, inode) in a small JSON file.

    Not thread-safe by itself: :func:`hash_files` updates it from the calling thread only.
    Concurrent processes may each save; the last one wins and the others' new entries are
    merged in when they save (a lost entry only costs a re-hash).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        """
        Args:
            path: The memo file; None keeps the memo in memory only.
        """
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        if self.path is not None:
            self.entries = self._read(self.path)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return {}  # missing or damaged memo: only costs re-hashing
        if not isinstance(data, dict) or data.get("version") != _MEMO_VERSION:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    @staticmethod
    def _matches(entry: Mapping[str, Any], st: os.stat_result) -> bool:
        return (
            entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns
            and entry.get("ino") == st.st_ino
            and isinstance(entry.get("sha256"), str)
            # racy entries (file modified just before it was hashed) are not trusted
            and int(entry.get("hashed_at_ns", 0)) - st.st_mtime_ns > RACY_NS
        )

    def lookup(self, path: str, st: os.stat_result) -> dict[str, Any] | None:
        """The memo entry of ``path`` if it still describes the file ``st`` describes."""
        entry = self.entries.get(path)
        if entry is not None and self._matches(entry, st):
            return entry
        return None

    def record(self, path: str, st: os.stat_result, sha256: str, hashed_at_ns: int) -> dict[str, Any]:
        """Remember a digest computed from a read that started at ``hashed_at_ns``."""
        entry = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ino": st.st_ino,
            "sha256": sha256,
            "hashed_at_ns": hashed_at_ns,
        }
        old = self.entries.get(path)
        if old is not None and old.get("sha256") == sha256:
            # Same content (e.g. only touched): derived data is still right.
            for name, value in old.items():
                entry.setdefault(name, value)
        self.entries[path] = entry
        self._dirty.add(path)
        return entry

    def set_extra(self, path: str, name: str, value: Any) -> None:
        """Attach derived data (e.g. an ONNX file's external-data locations) to an entry."""
        entry = self.entries.get(path)
        if entry is not None and entry.get(name) != value:
            entry[name] = value
            self._dirty.add(path)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    def save(self) -> None:
        """Write the memo atomically (temp file + rename) if anything changed."""
        if self.path is None or not self._dirty:
            return
        merged = self._read(self.path)
        for path in self._dirty:
            if path in self.entries:
                merged[path] = self.entries[path]
        if len(merged) > _MEMO_LIMIT:
            # Oldest hashes go first; they are the least likely to be asked again.
            ordered = sorted(merged.items(), key=lambda item: item[1].get("hashed_at_ns", 0))
            merged = dict(ordered[-_MEMO_LIMIT:])
        data = json.dumps({"version": _MEMO_VERSION, "files": merged}, separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".digests.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.entries = merged
        self._dirty.clear()


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def hash_files(
    paths: Iterable[str], memo: DigestMemo | None = None, workers: int | None = None
) -> dict[str, str]:
    """sha256 of many files: memo hits by stat, misses hashed in parallel, largest first.

    Args:
        paths: Absolute file paths.
        memo: Digest memo (updated, not saved); None hashes everything.
        workers: Hashing threads (default: one per core).

    Returns:
        {path: sha256} for every path.

    Raises:
        FileNotFoundError: for the first path that does not exist.
    """
    memo = memo if memo is not None else DigestMemo(None)
    result: dict[str, str] = {}
    misses: list[tuple[str, os.stat_result]] = []
    for path in dict.fromkeys(paths):
        st = _stat(path)
        if st is None:
            raise FileNotFoundError(path)
        entry = memo.lookup(path, st)
        if entry is not None:
            result[path] = entry["sha256"]
        else:
            misses.append((path, st))
    if not misses:
        return result
    misses.sort(key=lambda item: item[1].st_size, reverse=True)

    def job(item: tuple[str, os.stat_result]) -> tuple[str, str, int, os.stat_result]:
        path, _ = item
        started = time.time_ns()
        before = os.stat(path)
        sha, _size = sha256_file(path)
        return path, sha, started, before

    count = workers or default_workers()
    if count == 1 or len(misses) == 1:
        outcomes = [job(item) for item in misses]
    else:
        with ThreadPoolExecutor(max_workers=min(count, len(misses)), thread_name_prefix="sha256") as pool:
            outcomes = list(pool.map(job, misses))
    for path, sha, started, before in outcomes:
        result[path] = sha
        after = _stat(path)
        # Memoize only when the file did not change while it was read.
        if after is not None and (after.st_size, after.st_mtime_ns, after.st_ino) == (
            before.st_size, before.st_mtime_ns, before.st_ino
        ):
            memo.record(path, after, sha, started)
    return result


# --------------------------------------------------------------------------- ONNX external data

# Protobuf field numbers of the onnx.proto messages that can hold tensors.
_MODEL, _GRAPH, _NODE, _ATTR, _FUNC, _TENSOR, _SPARSE, _TRAINING = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNC},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _FUNC: {7: _NODE, 11: _ATTR},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14
_LOCATION_EXTERNAL = 1


class _WireError(ValueError):
    pass


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint too long")


def _walk(buf: memoryview, start: int, end: int, kind: int, out: dict[str, None], depth: int = 0) -> None:
    if depth > 200:
        raise _WireError("messages nested too deeply")
    children = _CHILDREN.get(kind)
    is_tensor = kind == _TENSOR
    location: str | None = None
    external = False
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            if is_tensor and number == _TENSOR_DATA_LOCATION:
                external = value == _LOCATION_EXTERNAL
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise _WireError("truncated field")
            if is_tensor:
                if number == _TENSOR_EXTERNAL_DATA:
                    key, value = _string_pair(buf, pos, stop)
                    if key == "location":
                        location = value
            elif children is not None:
                child = children.get(number)
                if child is not None:
                    _walk(buf, pos, stop, child, out, depth + 1)
            pos = stop
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
    if pos != end:
        raise _WireError("field runs past its message")
    if is_tensor and external:
        if not location:
            raise _WireError("a tensor stored externally has no 'location'")
        out.setdefault(location, None)


def _string_pair(buf: memoryview, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            length, pos = _varint(buf, pos, end)
            text = bytes(buf[pos : pos + length]).decode("utf-8", errors="strict")
            pos += length
            if number == 1:
                key = text
            elif number == 2:
                value = text
        elif wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
    return key, value


def external_data_locations(path: str | os.PathLike[str]) -> list[str]:
    """Locations of the external-data files an ONNX model references, as written in the
    model (relative to the model's directory), sorted, without loading the weights.

    The protobuf wire format is walked directly (graphs, subgraphs in node attributes,
    functions, training info, sparse tensors), skipping the bytes of embedded tensors, so a
    multi-GB model costs a few page reads and the ``onnx`` package is not imported.

    Args:
        path: The ONNX file.

    Returns:
        Sorted unique locations.

    Raises:
        InputError: when the file is not a valid ONNX protobuf.
    """
    out: dict[str, None] = {}
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise _WireError("the file is empty")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    _walk(view, 0, size, _MODEL, out)
                finally:
                    view.release()
    except (_WireError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path} is not a valid ONNX model ({exc})",
            hint="check that `source` points at an .onnx file (onnx.checker.check_model)",
        ) from None
    return sorted(out)


# --------------------------------------------------------------------------- model digests


@dataclass(frozen=True)
class ModelDigest:
    """Digest of an ONNX model: its file plus every external-data file it references."""

    digest: str  # the engine-key component
    onnx_sha256: str
    external_data: tuple[tuple[str, str], ...] = ()  # (location, sha256), sorted
    size: int | None = None  # bytes of all files, when known

    @classmethod
    def of(
        cls, onnx_sha256: str, external_data: Iterable[tuple[str, str]] = (), size: int | None = None
    ) -> ModelDigest:
        """Build a digest from file digests (the definition of ``model_digest``).

        Args:
            onnx_sha256: sha256 of the ONNX file.
            external_data: (location as written in the model, sha256) pairs.
            size: Total bytes, informational.

        Returns:
            The digest.
        """
        pairs = tuple(sorted((str(loc), str(sha)) for loc, sha in external_data))
        digest = sha256_json({"onnx": onnx_sha256, "external_data": [list(p) for p in pairs]})
        return cls(digest=digest, onnx_sha256=onnx_sha256, external_data=pairs, size=size)

    def details(self) -> dict[str, Any]:
        """JSON-ready details kept in meta.json and refs (to explain what changed)."""
        return {
            "digest": self.digest,
            "onnx_sha256": self.onnx_sha256,
            "external_data": dict(self.external_data),
            "size": self.size,
        }

    @classmethod
    def from_details(cls, data: Mapping[str, Any]) -> ModelDigest:
        external = data.get("external_data") or {}
        pairs = tuple(sorted(external.items())) if isinstance(external, Mapping) else tuple(
            tuple(p) for p in external
        )
        return cls(
            digest=str(data["digest"]),
            onnx_sha256=str(data["onnx_sha256"]),
            external_data=pairs,  # type: ignore[arg-type]
            size=data.get("size"),
        )


def _resolve_location(model_path: str, location: str) -> str:
    # ONNX resolves locations against the model's directory (onnx.external_data_helper).
    return os.path.normpath(os.path.join(os.path.dirname(model_path), location))


def digest_models(
    paths: Iterable[str], memo: DigestMemo | None = None, workers: int | None = None
) -> dict[str, ModelDigest]:
    """Model digests of ONNX files (with their external data), memoized, hashed in parallel.

    Args:
        paths: Absolute paths of ONNX files.
        memo: Digest memo (updated, not saved).
        workers: Hashing threads.

    Returns:
        {path: ModelDigest}.

    Raises:
        InputError: a model or one of its external-data files is missing or unreadable,
            or a file is not an ONNX model. All missing files are named at once.
    """
    memo = memo if memo is not None else DigestMemo(None)
    models = [os.path.abspath(p) for p in dict.fromkeys(paths)]
    missing = [p for p in models if not os.path.isfile(p)]
    if missing:
        raise InputError(
            "model file(s) not found: " + ", ".join(missing),
            hint="check `source` in the manifest (paths are relative to the manifest file)",
        )
    onnx = hash_files(models, memo, workers)
    locations: dict[str, list[str]] = {}
    for path in models:
        entry = memo.entries.get(path)
        known = entry.get("external") if entry and entry.get("sha256") == onnx[path] else None
        if isinstance(known, list):
            locations[path] = known
        else:
            locations[path] = external_data_locations(path)
            memo.set_extra(path, "external", locations[path])
    external_paths = {
        (path, loc): _resolve_location(path, loc) for path in models for loc in locations[path]
    }
    absent = [f"{resolved} (referenced by {path})" for (path, _), resolved in external_paths.items()
              if not os.path.isfile(resolved)]
    if absent:
        raise InputError(
            "external-data file(s) not found: " + "; ".join(absent),
            hint="keep the files an ONNX model references next to it, as onnx.save_model "
            "wrote them",
        )
    external = hash_files(external_paths.values(), memo, workers)
    result: dict[str, ModelDigest] = {}
    for path in models:
        pairs = [(loc, external[external_paths[(path, loc)]]) for loc in locations[path]]
        size = sum(memo.entries.get(p, {}).get("size", 0) or 0
                   for p in [path] + [external_paths[(path, loc)] for loc in locations[path]])
        result[path] = ModelDigest.of(onnx[path], pairs, size or None)
    return result


def declared_model_digest(sha256: str) -> ModelDigest:
    """The model digest of a single-file model whose sha256 is declared (``url`` sources):
    equal to the digest of the downloaded file, so a plan needs no download."""
    return ModelDigest.of(sha256.lower(), ())


def data_digest(path: str, memo: DigestMemo | None = None, workers: int | None = None) -> str:
    """Digest of a data file, or of a directory's regular files (name and sha256 of each,
    not recursive; dot files ignored). Used for calibration data and plugin libraries.

    Args:
        path: Absolute path of a file or directory.
        memo: Digest memo.
        workers: Hashing threads.

    Returns:
        sha256 hex digest.

    Raises:
        InputError: when the path does not exist.
    """
    if os.path.isdir(path):
        names = sorted(
            entry.name for entry in os.scandir(path) if entry.is_file() and not entry.name.startswith(".")
        )
        digests = hash_files([os.path.join(path, name) for name in names], memo, workers)
        return sha256_json({"files": [[name, digests[os.path.join(path, name)]] for name in names]})
    if not os.path.isfile(path):
        raise InputError(f"data file {path} not found", hint="check the path in the manifest")
    return hash_files([path], memo, workers)[path]


# --------------------------------------------------------------------------- key components


def _slug(text: str) -> str:
    out = []
    dash = False
    for char in text.lower():
        if char.isascii() and char.isalnum():
            out.append(char)
            dash = False
        elif not dash:
            out.append("-")
            dash = True
    return "".join(out).strip("-") or "gpu"


def gpu_signature(name: str, compute_capability: str, hardware_compatibility: str = "none") -> str:
    """What makes a plan non-portable across GPUs.

    Args:
        name: GPU product name as NVML reports it ("NVIDIA H100 80GB HBM3").
        compute_capability: "major.minor".
        hardware_compatibility: none | ampere_plus | same_compute_capability.

    Returns:
        ``cc9.0-nvidia-h100-80gb-hbm3`` (none), ``ampere_plus`` (portable across GPUs of
        compute capability >= 8.0) or ``cc9.0`` (same_compute_capability).
    """
    if hardware_compatibility == "ampere_plus":
        return "ampere_plus"
    if hardware_compatibility == "same_compute_capability":
        return f"cc{compute_capability}"
    return f"cc{compute_capability}-{_slug(name)}"


def tensorrt_component(version: str, version_compatible: bool = False) -> str:
    """The key's TensorRT component: the full version, or the major for version-compatible
    engines (see module docstring)."""
    if version_compatible:
        return version.split(".", 1)[0]
    return version


def build_component(build: Any, calibration_digest: str | None = None) -> dict[str, Any]:
    """The normalized build config that enters the key.

    Profiles keep their order (the index is meaningful) with inputs sorted by name; tactic
    sources are sorted; the calibration data path is replaced by its digest; None, empty and
    registered default values (:data:`BUILD_KEY_DEFAULTS`) are left out.

    Args:
        build: A :class:`trtops.spec.BuildConfig` (or any dataclass with its fields).
        calibration_digest: Digest of the calibration data (required with calibration).

    Returns:
        JSON-ready dict.
    """
    out: dict[str, Any] = {}
    for f in fields(build):
        name = f.name
        value = getattr(build, name)
        if name == "profiles":
            value = [
                [
                    {"name": r.name, "min": list(r.min), "opt": list(r.opt), "max": list(r.max)}
                    for r in sorted(profile, key=lambda r: r.name)
                ]
                for profile in value
            ]
        elif name == "tactic_sources" and value is not None:
            value = sorted(value)
        elif name == "calibration" and value is not None:
            value = {
                "batch_size": value.batch_size,
                "algorithm": value.algorithm,
                "max_batches": value.max_batches,
                "data": calibration_digest,
            }
            value = {k: v for k, v in value.items() if v is not None}
        else:
            value = _plain(value)
        if value is None or value == [] or value == {}:
            continue
        if name in BUILD_KEY_DEFAULTS and value == BUILD_KEY_DEFAULTS[name]:
            continue
        out[name] = value
    return out


@dataclass(frozen=True)
class EngineKey:
    """An engine key with the components it was computed from."""

    key: str
    components: dict[str, Any]
    model: dict[str, Any]  # ModelDigest.details(), for reasons and meta.json

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "components": self.components, "model": self.model}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineKey:
        return cls(key=data["key"], components=dict(data["components"]), model=dict(data.get("model") or {}))


def key_components(
    *,
    model_digest: str,
    build: Mapping[str, Any],
    tensorrt: str,
    gpu: str,
    plugins: Sequence[str] = (),
) -> dict[str, Any]:
    """All key components as a dict (the exact thing that is hashed)."""
    return {
        "schema": KEY_SCHEMA,
        "model_digest": model_digest,
        "build": dict(build),
        "tensorrt": tensorrt,
        "gpu": gpu,
        "plugins": sorted(plugins),
    }


def engine_key(
    spec: Any,
    model: ModelDigest,
    *,
    tensorrt_version: str,
    gpu: str,
    calibration_digest: str | None = None,
    plugin_digests: Sequence[str] = (),
) -> EngineKey:
    """The engine key of a spec on a platform.

    Args:
        spec: The :class:`trtops.spec.EngineSpec`.
        model: Digest of its model.
        tensorrt_version: The full TensorRT version that builds it.
        gpu: The GPU signature (:func:`gpu_signature`).
        calibration_digest: Digest of the spec's calibration data, if it has some.
        plugin_digests: sha256 of plugin libraries.

    Returns:
        The key with its components.
    """
    build = spec.build
    if build.calibration is not None and calibration_digest is None:
        raise ValueError(f"{spec.id}: calibration data digest is required")
    components = key_components(
        model_digest=model.digest,
        build=build_component(build, calibration_digest),
        tensorrt=tensorrt_component(tensorrt_version, build.version_compatible),
        gpu=gpu,
        plugins=plugin_digests,
    )
    return EngineKey(key=sha256_json(components), components=components, model=model.details())


def key_of(components: Mapping[str, Any]) -> str:
    """The key of a components dict (to check a meta.json against its key)."""
    return sha256_json(components)
