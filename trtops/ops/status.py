"""`trtops status`: every engine the cache knows (through its refs) and every engine of the
manifests not built yet: model/precision/target, key, state, size, age, latency and
throughput at the opt shape (the last measurement), accuracy. Reads only
the cache: no hashing, no TensorRT.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from trtops.cache import layout
from trtops.cache.entries import read_accuracy, read_perf
from trtops.errors import CacheError
from trtops.names import is_sha256
from trtops.perf.document import perf_summary, short_text


def format_age(seconds: float | None) -> str:
    """'45s', '12m', '3h', '5d'."""
    if seconds is None:
        return "?"
    seconds = max(0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _accuracy_text(accuracy: dict | None) -> str:
    if not accuracy:
        return ""
    return str(accuracy.get("summary") or accuracy.get("state") or "")


def perf_text(summary: dict | None) -> str:
    """The PERF cell: ``1.51ms 662/s`` at the opt shape, ``!`` after it when the gate
    failed; ``-`` when never measured."""
    text = short_text(summary)
    if summary and summary.get("state") in ("failed", "damaged"):
        text = (text + " !") if text else summary["state"]
    return text or "-"


def collect_rows(store: Any, spec_ids: list[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Rows for every ref (plus never-built spec ids), and the number of unreferenced entries.

    Args:
        store: The cache.
        spec_ids: Ids of the current manifests' specs (None: refs only).

    Returns:
        (rows, unreferenced entry count).
    """
    now = time.time()
    rows = []
    referenced = set()
    refs = dict(store.list_refs())
    for ref, record in refs.items():
        key = record.get("key")
        row: dict[str, Any] = {"engine": ref, "key": key, "state": "missing", "size": None,
                               "created_at": None, "age_seconds": None, "accuracy": None,
                               "perf": None}
        if is_sha256(key):
            referenced.add(key)
            meta = store.read_meta(key)
            if meta is not None:
                accuracy = read_accuracy(store, key)
                row["state"] = layout.state_from_accuracy(accuracy)
                row["size"] = meta.get("engine_size")
                row["created_at"] = meta.get("created_at")
                created = layout.parse_time(meta.get("created_at"))
                row["age_seconds"] = round(now - created) if created is not None else None
                row["accuracy"] = _accuracy_text(accuracy)
                try:
                    row["perf"] = perf_summary(read_perf(store, key))
                except CacheError as exc:
                    row["perf"] = {"state": "damaged", "summary": exc.message}
        rows.append(row)
    for spec_id in spec_ids or []:
        if spec_id not in refs:
            rows.append({"engine": spec_id, "key": None, "state": "not built", "size": None,
                         "created_at": None, "age_seconds": None, "accuracy": None,
                         "perf": None})
    unreferenced = sum(1 for key in store.list_keys() if key not in referenced)
    return rows, unreferenced


def status(store: Any, paths: Sequence[str] = ()) -> tuple[list[dict[str, Any]], int]:
    """``trtops status``: rows for the cache's refs and the manifests' engines, in the
    manifests' order when there are manifests.

    Args:
        store: The cache.
        paths: Manifest paths (empty: refs only).

    Returns:
        (rows, unreferenced entry count); see :func:`collect_rows`.
    """
    spec_ids = None
    if paths:
        from trtops.plan import load_specs

        cache_dir = getattr(store, "root", None)
        spec_ids = [s.id for s in load_specs(list(paths), check_models=False, cache_dir=cache_dir)]
    rows, unreferenced = collect_rows(store, spec_ids)
    if spec_ids is not None:
        order = {spec_id: i for i, spec_id in enumerate(spec_ids)}
        rows.sort(key=lambda r: (order.get(r["engine"], len(order)), r["engine"]))
    return rows, unreferenced
