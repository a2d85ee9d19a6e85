"""Where things live in an engine cache, and the format of what is stored there.

Shared by every backend (the local filesystem and remote object stores), so a cache directory
copied to S3 with ``aws s3 sync`` is a valid remote cache and vice versa::

    engines/<k[:2]>/<key>/engine.plan  meta.json  accuracy.json  build.log ...
    refs/<manifest>/<model>/<precision>/<target>.json      last key per logical engine
    timing/<tensorrt>/<gpu-signature>.cache                   timing caches
    locks/<name>.lock                                         (local only) file locks
    tmp/                                                      (local only) staging area
    prepared/<digest>/model.onnx  report.json                 (local only) prepared models
    preflight/<tensorrt>/<digest>-n<flags>[-<parser flags>].json  (local only) parse preflight verdicts
    unsynced/<id>.json                                        (local only) pulls not yet on disk

``meta.json`` (immutable, written last; see :func:`make_meta`)::

    {"format": 1, "key": ..., "spec_id": "manifest/model/precision/target",
     "components": {"schema", "model_digest", "build", "tensorrt", "gpu", "plugins"[, "prepare"]},
     "model": {"onnx_sha256", "external_data": {location: sha256}, "size"},
     "engine_sha256": ..., "engine_size": ..., "created_at": "2025-01-31T12:00:00Z",
     "build_seconds": ..., "device_memory": ..., "io_tensors": [...],
     "tensorrt_version": full version that built it, "gpu": {"name", "compute_capability"},
     "files": {name: {"sha256", "size"}}, ...builder extras}

``accuracy.json`` (mutable, replaced atomically by ``trtops verify``)::

    {"state": "accepted" | "rejected" | "unverified", "summary": "one line for humans",
     "checked_at": ISO time, ...verifier details}

A ref record::

    {"key": ..., "spec_id": ..., "components": {...}, "model": {...}, "updated_at": ...,
     "also": [keys]}     (``also``: other entries of the engine that ``pull --all`` fetched)
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

from trtops.cache.store import ACCURACY_FILE, ENGINE_FILE, META_FILE, PERF_FILE
from trtops.errors import CacheError, InputError
from trtops.names import KEY_RE

META_FORMAT = 1

ENGINES_DIR = "engines"
REFS_DIR = "refs"
TIMING_DIR = "timing"
LOCKS_DIR = "locks"
TMP_DIR = "tmp"
PREPARED_DIR = "prepared"  # prepared models: prepared/<digest>/model.onnx (trtops.prepare.runner)
# Parse preflight verdicts (trtops.trt.preflight_verdicts names the files). gc keeps them: a
# few KB at most each (a crash keeps the last 40 lines of its report), keyed by content so
# never stale, and a remembered parser crash is worth keeping should its model come back.
PREFLIGHT_DIR = "preflight"

# Files an existing entry may replace in place; everything else is create-only.
MUTABLE_FILES = (ACCURACY_FILE, PERF_FILE)

STATES = ("accepted", "rejected", "unverified")

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+@=-]{0,127}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_key(key: str) -> str:
    """Validate an engine key (64 lowercase hex digits).

    Args:
        key: The candidate key.

    Returns:
        The key, unchanged.

    Raises:
        InputError: when it is not a key (it may come from the command line).
    """
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InputError(f"{key!r} is not an engine key", hint="keys are 64 lowercase hex digits")
    return key


def check_file_name(name: str) -> str:
    """Validate the name of a file inside an entry (no directories, no dot files)."""
    if not isinstance(name, str) or not _FILE_RE.match(name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid entry file name")
    return name


def check_segment(segment: str, what: str = "path segment") -> str:
    """Validate one segment of a ref or timing-cache path (no '/', no '..', no dot files)."""
    if not isinstance(segment, str) or not _SEGMENT_RE.match(segment) or segment in (".", ".."):
        raise InputError(
            f"{segment!r} is not a valid {what}",
            hint="use letters, digits and '_', '.', '-', '+', starting with a letter or digit",
        )
    return segment


def entry_prefix(key: str) -> str:
    """``engines/<k[:2]>/<key>``: the relative location of an entry."""
    check_key(key)
    return f"{ENGINES_DIR}/{key[:2]}/{key}"


def ref_segments(ref: str) -> list[str]:
    """Split and validate a ref name ``manifest/model/precision/target``."""
    if not isinstance(ref, str) or not ref:
        raise InputError(f"{ref!r} is not a ref name", hint="refs look like manifest/model/precision/target")
    parts = ref.split("/")
    for part in parts:
        check_segment(part, "ref name segment")
    return parts


def ref_path(ref: str) -> str:
    """``refs/<manifest>/<model>/<precision>/<target>.json`` for a ref name."""
    return f"{REFS_DIR}/{'/'.join(ref_segments(ref))}.json"


def ref_from_path(relative: str) -> str | None:
    """Inverse of :func:`ref_path` for a path relative to ``refs/``; None for stray files."""
    if not relative.endswith(".json"):
        return None
    ref = relative[: -len(".json")].replace("\\", "/")
    try:
        ref_segments(ref)
    except InputError:
        return None
    return ref


def timing_path(tensorrt: str, gpu_signature: str) -> str:
    """``timing/<tensorrt>/<gpu-signature>.cache``."""
    check_segment(tensorrt, "TensorRT version")
    check_segment(gpu_signature, "GPU signature")
    return f"{TIMING_DIR}/{tensorrt}/{gpu_signature}.cache"


def lock_file_name(name: str) -> str:
    """A file-system-safe name for a lock (any string goes in, a stable safe name comes out)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80].lstrip(".") or "lock"
    if safe != name:
        # Two different names must not share one lock after sanitizing.
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return safe + ".lock"


# --------------------------------------------------------------------------- formats


def utc_now() -> str:
    """Current time as ISO 8601 UTC with a 'Z' (what meta.json and refs store)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch for an ISO time written by :func:`utc_now`; None if unknown."""
    if not isinstance(value, str):
        return None
    from datetime import datetime, timezone

    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def make_meta(
    *,
    key: str,
    spec_id: str,
    components: Mapping[str, Any],
    engine_sha256: str,
    engine_size: int,
    model: Mapping[str, Any] | None = None,
    build_seconds: float | None = None,
    device_memory: int | None = None,
    io_tensors: list[dict[str, Any]] | None = None,
    tensorrt_version: str | None = None,
    gpu: Mapping[str, Any] | None = None,
    files: Mapping[str, Mapping[str, Any]] | None = None,
    created_at: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of an entry's ``meta.json``.

    Args:
        key: The engine key.
        spec_id: ``manifest/model/precision/target`` of the spec that built it.
        components: Every engine-key component (see :class:`trtops.keys.engine_key.EngineKey`).
        engine_sha256: sha256 of ``engine.plan``.
        engine_size: Size of ``engine.plan`` in bytes.
        model: Model digest details (ONNX and external-data file digests).
        build_seconds: Wall time of the build.
        device_memory: Device memory the engine needs (bytes), from the builder.
        io_tensors: Engine inputs and outputs (name, mode, dtype, shape), from the builder.
        tensorrt_version: The full TensorRT version that built the engine.
        gpu: The GPU it was built on (name, compute_capability).
        files: sha256 and size of every immutable file of the entry.
        created_at: ISO time; default now.
        extra: Further builder fields, merged in (never overriding the above).

    Returns:
        A JSON-ready dict.
    """
    meta: dict[str, Any] = {
        "format": META_FORMAT,
        "key": check_key(key),
        "spec_id": spec_id,
        "components": dict(components),
        "model": dict(model or {}),
        "engine_sha256": engine_sha256,
        "engine_size": int(engine_size),
        "created_at": created_at or utc_now(),
        "build_seconds": build_seconds,
        "device_memory": device_memory,
        "io_tensors": list(io_tensors or []),
        "tensorrt_version": tensorrt_version,
        "gpu": dict(gpu) if gpu else None,
        "files": {name: dict(info) for name, info in (files or {}).items()},
    }
    for name, value in (extra or {}).items():
        meta.setdefault(name, value)
    from trtops.cache.entry_schema import check_meta, written

    check_meta(written(meta))  # what readers will check it against (a failure is a bug here)
    return meta


def make_ref_record(
    *, key: str, spec_id: str, components: Mapping[str, Any], model: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A ref record: the last key of a logical engine plus its components, so the planner
    can explain a change without reading the old entry (which gc may have removed)."""
    return {
        "key": check_key(key),
        "spec_id": spec_id,
        "components": dict(components),
        "model": dict(model or {}),
        "updated_at": utc_now(),
    }


def state_from_accuracy(data: Mapping[str, Any] | None) -> str:
    """The entry state from a parsed ``accuracy.json`` (None: not checked yet).

    Raises:
        CacheError: when the file names an unknown state.
    """
    if data is None:
        return "unverified"
    state = data.get("state", "unverified")
    if state not in STATES:
        raise CacheError(
            f"accuracy.json has unknown state {state!r}",
            hint=f"expected one of {', '.join(STATES)}; re-run `trtops verify` to rewrite it",
        )
    return state


__all__ = [
    "ACCURACY_FILE", "ENGINE_FILE", "ENGINES_DIR", "KEY_RE", "LOCKS_DIR",
    "META_FILE", "META_FORMAT", "MUTABLE_FILES", "PREFLIGHT_DIR", "PREPARED_DIR", "REFS_DIR", "STATES", "TIMING_DIR", "TMP_DIR",
    "check_file_name", "check_key", "check_segment", "entry_prefix", "lock_file_name",
    "make_meta", "make_ref_record", "parse_time", "ref_from_path", "ref_path", "ref_segments",
    "state_from_accuracy", "timing_path", "utc_now",
]
