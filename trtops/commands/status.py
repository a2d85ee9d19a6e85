"""`trtops status [PATH...]`: every engine the cache knows (through its refs) and every
engine of the manifests not built yet: model/precision/target, key, state, size, age,
accuracy. Reads only the cache: no hashing, no TensorRT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument

    parser = subparsers.add_parser(
        "status",
        help="list engines in the cache: key, state, size, age, accuracy",
        description="List every engine the cache has a ref for (the last build of each "
        "manifest/model/precision/target) and, when manifests are found, their engines that "
        "were never built.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/ when it exists)")
    add_cache_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(handler=run)


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


def collect_rows(store: Any, spec_ids: list[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Rows for every ref (plus never-built spec ids), and the number of unreferenced entries.

    Args:
        store: The cache.
        spec_ids: Ids of the current manifests' specs (None: refs only).

    Returns:
        (rows, unreferenced entry count).
    """
    from trtops.cache import layout
    from trtops.cache.local import read_accuracy

    now = time.time()
    rows = []
    referenced = set()
    refs = dict(store.list_refs())
    for ref, record in refs.items():
        key = record.get("key")
        row: dict[str, Any] = {"engine": ref, "key": key, "state": "missing", "size": None,
                               "created_at": None, "age_seconds": None, "accuracy": None}
        if isinstance(key, str) and layout.KEY_RE.match(key):
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
        rows.append(row)
    for spec_id in spec_ids or []:
        if spec_id not in refs:
            rows.append({"engine": spec_id, "key": None, "state": "not built", "size": None,
                         "created_at": None, "age_seconds": None, "accuracy": None})
    unreferenced = sum(1 for key in store.list_keys() if key not in referenced)
    return rows, unreferenced


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.names import format_bytes
    from trtops.plan import load_specs

    store = open_store(args.cache)
    paths = manifest_paths(args, only_existing=True)
    spec_ids = None
    if paths:
        cache_dir = getattr(store, "root", None)
        spec_ids = [s.id for s in load_specs(paths, check_models=False, cache_dir=cache_dir)]
    rows, unreferenced = collect_rows(store, spec_ids)
    if spec_ids is not None:
        order = {spec_id: i for i, spec_id in enumerate(spec_ids)}
        rows.sort(key=lambda r: (order.get(r["engine"], len(order)), r["engine"]))
    if args.json:
        json.dump({"cache": store.url, "engines": rows, "unreferenced_entries": unreferenced},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print(f"No engines in {store.url} yet; `trtops plan` shows what `trtops apply` would build.")
        return 0
    table = [("ENGINE", "KEY", "STATE", "SIZE", "AGE", "ACCURACY")]
    for row in rows:
        table.append((
            row["engine"],
            (row["key"] or "-")[:12],
            row["state"],
            format_bytes(row["size"]) if row["size"] is not None else "-",
            format_age(row["age_seconds"]) if row["age_seconds"] is not None else "-",
            row["accuracy"] or "",
        ))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for line in table:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:5])) + "  " + line[5])
    if unreferenced:
        print(f"\n{unreferenced} unreferenced entr{'y' if unreferenced == 1 else 'ies'} "
              "(`trtops gc` removes them)")
    return 0
