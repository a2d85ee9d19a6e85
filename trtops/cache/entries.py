"""Entry logic written once above any store (local directory or remote object store).

What an entry's ``meta.json`` promises (file digests, sizes, the files to copy) and whether
a remote's can be trusted; an entry's state from ``accuracy.json``; checking an entry
against its ``meta.json``; refs; publishing a built engine; merging timing caches under
the store's lock. Every function takes a :class:`~trtops.cache.store.EntryStore`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import trtops.cache.layout as layout
from trtops.cache.store import (
    ACCURACY_FILE,
    ENTRY_FILES,
    META_FILE,
    OPTIONAL_FILES,
    PERF_FILE,
    EntryStore,
    PutResult,
)
from trtops.errors import CacheError, InputError
from trtops.names import ENGINE_FILE, is_identifier, is_sha256


def json_bytes(data: Any) -> bytes:
    """The one JSON encoding of stored metadata (meta.json, accuracy.json, refs)."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def load_json(data: bytes, what: str) -> Any:
    """Parse stored JSON (size-capped, depth-safe: :func:`entry_schema.parse_document`); a
    damaged file is a :class:`CacheError` naming ``what``."""
    from trtops.cache.entry_schema import EntryInvalid, parse_document

    try:
        return parse_document(data, what)
    except EntryInvalid as exc:
        raise CacheError(exc.reason,
                         hint="run `trtops cache verify` to find damaged entries") from None


# --------------------------------------------------------------------------- meta.json facts


def expected_digests(meta: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of each immutable file of an entry as recorded in its meta.json.

    Args:
        meta: The entry's meta.json.

    Returns:
        File name -> sha256 (always engine.plan when meta records it).
    """
    out: dict[str, str] = {}
    files = meta.get("files")
    if isinstance(files, Mapping):
        for name, info in files.items():
            if isinstance(info, Mapping) and isinstance(info.get("sha256"), str):
                out[str(name)] = info["sha256"]
    if isinstance(meta.get("engine_sha256"), str):
        out[ENGINE_FILE] = meta["engine_sha256"]
    return out


def meta_problem(key: str, meta: Any) -> str | None:
    """Why a remote entry's meta.json must not be trusted, or None when it is sound.

    A remote is shared: its meta.json decides which files are fetched, under which names,
    verified against which digests, and which loader names ``pull --dest`` writes. So it
    must be an object that names this key, whose key components hash to the key, whose
    engine sha256 is a digest, whose file names are plain names (no ``..``, no ``/``) and
    whose spec id is ``manifest/model/precision/target`` of safe segments.

    Args:
        key: The entry's key (from its location in the store).
        meta: The parsed meta.json.

    Returns:
        A reason, or None.
    """
    from trtops.cache.entry_schema import EntryInvalid
    from trtops.cache.entry_schema import check_meta as check_schema
    from trtops.keys.engine_key import key_of

    if not isinstance(meta, Mapping):
        return "meta.json is not a JSON object"
    if not (isinstance(meta.get("engine_sha256"), str) and is_sha256(meta["engine_sha256"])):
        return "meta.json has no valid engine_sha256 (the engine could not be verified)"
    try:
        check_schema(dict(meta))
    except EntryInvalid as exc:
        return exc.reason
    if meta.get("key") not in (None, key):
        return f"meta.json names another key ({str(meta.get('key'))[:70]!r})"
    components = meta.get("components")
    if components is not None:
        try:
            if not isinstance(components, Mapping) or key_of(dict(components)) != key:
                return "meta.json components do not hash to the entry key"
        except (TypeError, ValueError):
            return "meta.json components do not hash to the entry key"
    if not (isinstance(meta.get("engine_sha256"), str)
            and is_sha256(meta["engine_sha256"])):
        return "meta.json has no valid engine_sha256 (the engine could not be verified)"
    files = meta.get("files")
    if files is not None:
        if not isinstance(files, Mapping):
            return "meta.json 'files' is not an object"
        for name, info in files.items():
            try:
                layout.check_file_name(name)
            except ValueError:
                return f"meta.json lists a file name that is not allowed: {str(name)[:80]!r}"
            if not isinstance(info, Mapping):
                return f"meta.json describes {name!r} badly"
    spec_id = meta.get("spec_id")
    if spec_id is not None:
        try:
            segments = layout.ref_segments(spec_id)
        except InputError:
            segments = []
        # model, precision and target become module and directory names in `pull --dest`
        if len(segments) != 4 or not all(is_identifier(s) for s in segments[1:]):
            return (f"meta.json spec_id {str(spec_id)[:80]!r} is not "
                    "manifest/model/precision/target")
    return None


def check_meta(remote: Any, key: str, meta: Any) -> None:
    """Raise :class:`CacheError` when a remote entry's meta.json must not be trusted."""
    problem = meta_problem(key, meta)
    if problem:
        raise CacheError(f"refusing remote entry {key[:12]} in {remote.url}: {problem}",
                         hint="the remote entry is damaged or was not written by trtops; "
                              "delete it there and push it again")


def entry_file_names(meta: Mapping[str, Any], *, with_logs: bool = True) -> list[str]:
    """Files to copy for an entry: those meta.json lists, the engine, accuracy.json and
    perf.json (the mutable ones, which meta.json does not list); without ``with_logs``
    not the :data:`~trtops.cache.store.OPTIONAL_FILES` (build.log)."""
    files = meta.get("files")
    names = set(files) if isinstance(files, Mapping) else set(ENTRY_FILES)
    names |= {ENGINE_FILE, ACCURACY_FILE, PERF_FILE}
    names.discard(META_FILE)
    if not with_logs:
        names -= OPTIONAL_FILES
    return sorted(names, key=lambda n: (n != ENGINE_FILE, n))  # the big one first


def entry_size(meta: Mapping[str, Any], *, with_logs: bool = True) -> int:
    """Bytes of an entry's immutable files according to meta.json (for progress totals);
    without ``with_logs`` not counting the :data:`~trtops.cache.store.OPTIONAL_FILES`."""
    files = meta.get("files")
    if isinstance(files, Mapping):
        total = sum(int(info.get("size") or 0) for name, info in files.items()
                    if isinstance(info, Mapping) and (with_logs or name not in OPTIONAL_FILES))
        if total:
            return total
    return int(meta.get("engine_size") or 0)


def check_entry(store: Any, key: str) -> str | None:
    """Why an entry is corrupt, or None when every file matches meta.json (an optional
    file, :data:`~trtops.cache.store.OPTIONAL_FILES`, may be absent: a pulled entry
    without its build.log is sound; a present one must match).

    Args:
        store: The cache.
        key: A complete entry's key.

    Returns:
        A reason, or None.
    """

    try:
        meta = store.read_meta(key)
    except CacheError as exc:
        return exc.message
    if meta is None:
        return "meta.json vanished"
    problem = meta_problem(key, meta)
    if problem:
        return problem
    try:
        read_accuracy(store, key)
        read_perf(store, key)
    except CacheError as exc:
        return exc.message
    expected = {ENGINE_FILE: {"sha256": meta.get("engine_sha256"), "size": meta.get("engine_size")}}
    for name, info in (meta.get("files") or {}).items():
        if isinstance(info, dict) and name not in expected:
            expected[name] = info
    if not expected[ENGINE_FILE]["sha256"]:
        return "meta.json has no engine_sha256"
    for name, info in expected.items():
        digest = _digest(store, key, name)
        if digest is None:
            if name in OPTIONAL_FILES:
                continue
            return f"{name} is missing"
        sha, size = digest
        if info.get("size") is not None and int(info["size"]) != size:
            return f"{name} has {size} bytes, meta.json says {info['size']}"
        if info.get("sha256") and info["sha256"] != sha:
            return f"{name} sha256 is {sha[:12]}..., meta.json says {str(info['sha256'])[:12]}..."
    return None


def _digest(store: Any, key: str, name: str) -> tuple[str, int] | None:
    from trtops.keys.memo import sha256_file

    entry_dir = getattr(store, "entry_dir", None)
    if entry_dir is not None:  # local: stream the file instead of reading it into memory
        path = entry_dir(key) / name
        try:
            return sha256_file(path)
        except FileNotFoundError:
            return None
    data = store.read_file(key, name)
    if data is None:
        return None
    return hashlib.sha256(data).hexdigest(), len(data)


# --------------------------------------------------------------------------- engine


def read_engine_meta(store: Any, key: str) -> dict:
    """The meta.json of the engine ``key`` in ``store``.

    Raises:
        CacheError: no complete entry for the key.
    """
    meta = store.read_meta(key)
    if meta is None:
        raise CacheError(f"no engine {key[:12]} in {store.url}",
                         hint="run `trtops apply` (or `trtops pull`) first")
    return meta


def fetch_engine(store: Any, key: str, meta: Mapping[str, Any], dest: Path) -> Path:
    """Copy the engine of entry ``key`` to ``dest`` and check that its bytes are the
    published ones (``meta``'s engine_sha256): TensorRT never gets other bytes.

    Raises:
        CacheError: the entry has no engine file, or its bytes do not match.
    """
    from trtops.keys.memo import sha256_file

    if not store.fetch_file(key, ENGINE_FILE, dest):
        raise CacheError(f"engine {key[:12]} in {store.url} has no {ENGINE_FILE}",
                         hint="run `trtops cache verify` and rebuild it with `trtops apply`")
    if sha256_file(dest)[0] != meta.get("engine_sha256"):
        raise CacheError(f"engine {key[:12]} in {store.url} is corrupt (sha256 mismatch)",
                         hint="run `trtops cache verify` and rebuild it with `trtops apply`")
    return dest


# --------------------------------------------------------------------------- state


def read_accuracy(store: EntryStore, key: str) -> dict | None:
    """The entry's parsed accuracy.json, or None (not checked yet, or no entry).

    Raises:
        CacheError: when the file is not valid JSON.
    """
    return parse_accuracy(store.read_file(key, ACCURACY_FILE), key)


def parse_accuracy(data: bytes | None, key: str) -> dict | None:
    """accuracy.json bytes (as read from a store) parsed; None when absent or not an object.

    Raises:
        CacheError: when the file is not valid JSON.
    """
    from trtops.cache.entry_schema import check_accuracy

    return _parse_checked(data, key, ACCURACY_FILE, check_accuracy,
                          "run `trtops cache verify --delete` to drop damaged entries")


def read_perf(store: EntryStore, key: str) -> dict | None:
    """The entry's parsed perf.json, or None (never measured, or no entry).

    Raises:
        CacheError: when the file is not a perf.json trtops writes.
    """
    return parse_perf(store.read_file(key, PERF_FILE), key)


def parse_perf(data: bytes | None, key: str) -> dict | None:
    """perf.json bytes (as read from a store) checked against its schema; None when absent.

    Raises:
        CacheError: when the file is not valid JSON or not a perf.json.
    """
    from trtops.cache.entry_schema import check_perf

    return _parse_checked(data, key, PERF_FILE, check_perf,
                          "run `trtops bench` to measure the engine again")


def _parse_checked(data: bytes | None, key: str, name: str, check: Callable[[Any], Any],
                   hint: str) -> dict | None:
    """An entry's JSON file ``name`` parsed and checked by ``check`` (entry_schema); None
    when absent. Raises CacheError with ``hint`` when it is not what trtops writes."""
    from trtops.cache.entry_schema import EntryInvalid

    if data is None:
        return None
    try:
        return check(load_json(data, f"{name} of entry {key}"))
    except EntryInvalid as exc:
        raise CacheError(f"{exc.reason} (entry {key[:12]})", hint=hint) from None


def write_perf(store: EntryStore, key: str, document: Mapping[str, Any]) -> None:
    """Replace an entry's perf.json (checked against the schema readers use first)."""
    from trtops.cache.entry_schema import check_perf, written

    check_perf(written(dict(document)))
    store.replace_file(key, PERF_FILE, json_bytes(dict(document)))


def entry_state(store: EntryStore, key: str) -> str | None:
    """State of an entry.

    Args:
        store: Any store.
        key: Engine key.

    Returns:
        'accepted', 'rejected', 'unverified' (no accuracy.json yet), or None when there is
        no complete entry.
    """
    if not store.has_entry(key):
        return None
    return state_of_accuracy(store.read_file(key, ACCURACY_FILE), key)


def state_of_accuracy(data: bytes | None, key: str) -> str:
    """The state accuracy.json bytes (as read from a store; None: absent) give an entry:
    'unverified' without the file.

    Raises:
        CacheError: when the file is not valid JSON or names an unknown state.
    """
    return layout.state_from_accuracy(parse_accuracy(data, key))


# --------------------------------------------------------------------------- refs and publishing


def record_ref(store: EntryStore, spec_id: str, engine_key: Any) -> dict:
    """Point the ref of a logical engine at a key (after building or reusing it).

    Args:
        store: Any store.
        spec_id: ``manifest/model/precision/target``.
        engine_key: A :class:`trtops.keys.engine_key.EngineKey`.

    Returns:
        The record written.
    """
    record = layout.make_ref_record(
        key=engine_key.key, spec_id=spec_id, components=engine_key.components, model=engine_key.model
    )
    store.write_ref(spec_id, record)
    return record


def ensure_ref(store: EntryStore, spec_id: str, engine_key: Any) -> bool:
    """Point a ref at a key unless it already does (for 'reuse' actions: a no-op apply
    should not rewrite a thousand refs).

    Args:
        store: Any store.
        spec_id: ``manifest/model/precision/target``.
        engine_key: A :class:`trtops.keys.engine_key.EngineKey`.

    Returns:
        True when the ref was written.
    """
    try:
        current = store.read_ref(spec_id)
    except CacheError:
        current = None  # a damaged ref is simply replaced
    if current and current.get("key") == engine_key.key and current.get("components") == engine_key.components:
        return False
    record_ref(store, spec_id, engine_key)
    return True


def ref_keys(record: Any) -> set[str]:
    """The keys a ref record keeps from ``trtops gc``: its key, and the other entries of the
    same engine that ``pull --all`` fetched (``also``)."""
    if not isinstance(record, Mapping):
        return set()
    keys = {record.get("key")} | set(record.get("also") or ())
    return {k for k in keys if is_sha256(k)}


def record_pull_ref(store: EntryStore, spec_id: str, key: str, meta: Mapping[str, Any],
                    also: list[str] | tuple[str, ...] = ()) -> bool:
    """Point a logical engine's ref at the entry a pull fetched (or found present), so that
    ``gc`` keeps it and ``status``/``emit`` see it; unchanged refs are not rewritten.

    Args:
        store: The local store.
        spec_id: ``manifest/model/precision/target``.
        key: The pulled entry's key.
        meta: Its meta.json (components, model).
        also: Further keys of this engine the pull fetched (``pull --all``).

    Returns:
        True when the ref was written.
    """
    record = layout.make_ref_record(key=key, spec_id=spec_id,
                                    components=dict(meta.get("components") or {}),
                                    model=meta.get("model") or {})
    if also:
        record["also"] = sorted(set(also) - {record["key"]})
    try:
        current = store.read_ref(spec_id)
    except CacheError:
        current = None  # a damaged ref is simply replaced
    if current and all(current.get(k) == record.get(k) for k in ("key", "components", "also")):
        return False
    store.write_ref(spec_id, record)
    return True


def file_digest(source: Path | bytes | bytearray | memoryview) -> tuple[str, int]:
    """(sha256, size) of a path or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return hashlib.sha256(data).hexdigest(), len(data)
    from trtops.keys.memo import sha256_file

    return sha256_file(source)


def publish_entry(
    store: EntryStore,
    engine_key: Any,
    spec_id: str,
    files: Mapping[str, Path | bytes],
    *,
    accuracy: Mapping[str, Any] | None = None,
    perf: Mapping[str, Any] | None = None,
    write_ref: bool = True,
    lock_timeout: float = 600.0,
    **meta_fields: Any,
) -> tuple[PutResult, dict]:
    """Publish a built engine: hash its files, write meta.json, put the entry create-only,
    then point the spec's ref at it. Holds the store's ``publish`` lock so ``trtops gc``
    never sees a new entry before its ref.

    Args:
        store: Any store.
        engine_key: The :class:`trtops.keys.engine_key.EngineKey` from the plan action.
        spec_id: ``manifest/model/precision/target``.
        files: At least ``engine.plan``; also build.log, layers.json, calibration.cache...
        accuracy: Initial accuracy.json content (``{"state": "accepted"|"rejected", ...}``);
            None leaves the entry 'unverified'.
        perf: Initial perf.json content (:mod:`trtops.perf.document`), or None.
        write_ref: Point the ref at the entry (default).
        lock_timeout: Seconds to wait for the publish lock.
        **meta_fields: Builder facts for meta.json: build_seconds, device_memory,
            io_tensors, tensorrt_version, gpu, extra (see :func:`layout.make_meta`).

    Returns:
        (put result, the meta written or, when the entry already existed, the existing meta).
    """
    if ENGINE_FILE not in files:
        raise ValueError("publish_entry needs engine.plan")
    payload: dict[str, Path | bytes] = dict(files)
    if accuracy is not None:
        from trtops.cache.entry_schema import check_accuracy, written

        check_accuracy(written(dict(accuracy)))
        payload[ACCURACY_FILE] = json_bytes(dict(accuracy))
    if perf is not None:
        from trtops.cache.entry_schema import check_perf, written

        check_perf(written(dict(perf)))
        payload[PERF_FILE] = json_bytes(dict(perf))
    digests = {
        name: file_digest(source)
        for name, source in payload.items()
        if name not in layout.MUTABLE_FILES
    }
    engine_sha, engine_size = digests[ENGINE_FILE]
    meta = layout.make_meta(
        key=engine_key.key,
        spec_id=spec_id,
        components=engine_key.components,
        model=engine_key.model,
        engine_sha256=engine_sha,
        engine_size=engine_size,
        files={name: {"sha256": sha, "size": size} for name, (sha, size) in digests.items()},
        **meta_fields,
    )
    with store.lock("publish", timeout=lock_timeout):
        result = store.put_entry(engine_key.key, payload, meta)
        if not result.created:
            meta = store.read_meta(engine_key.key) or meta
        if write_ref:
            record_ref(store, spec_id, engine_key)
    return result, meta


# --------------------------------------------------------------------------- timing caches


def timing_lock_name(tensorrt: str, gpu_signature: str) -> str:
    """The store lock to hold while merging a timing cache (read, merge, write)."""
    return f"timing-{tensorrt}-{gpu_signature}"


def merge_timing_cache_into(store: Any, tensorrt: str, gpu_signature: str, data: bytes | None,
                            merge: Callable[[bytes, bytes], bytes] | None = None, *,
                            lock_timeout: float = 120.0) -> bool:
    """Bring serialized timing-cache bytes into a store's timing cache, under the store's
    lock (read, merge, write), so concurrent builders never lose each other's timings.

    Args:
        store: The store whose timing cache receives ``data``.
        tensorrt: Full TensorRT version.
        gpu_signature: GPU signature.
        data: The timing cache to bring in (nothing happens when empty).
        merge: ``merge(current, data) -> bytes`` (TensorRT's combine); without it an
            existing cache is never overwritten.
        lock_timeout: Seconds to wait for the store's lock.

    Returns:
        True when the store's timing cache changed.
    """
    if not data:
        return False
    with store.lock(timing_lock_name(tensorrt, gpu_signature), timeout=lock_timeout):
        current = store.read_timing_cache(tensorrt, gpu_signature)
        if current == data:
            return False
        if current is None:
            store.write_timing_cache(tensorrt, gpu_signature, data)
            return True
        if merge is None:
            return False
        merged = merge(current, data)
        if merged == current:
            return False
        store.write_timing_cache(tensorrt, gpu_signature, merged)
        return True


def list_timing_caches(store: Any) -> list[tuple[str, str]]:
    """(tensorrt, gpu_signature) of a store's timing caches (empty for a store that cannot
    list them)."""
    lister = getattr(store, "list_timing_caches", None)
    return list(lister()) if callable(lister) else []
