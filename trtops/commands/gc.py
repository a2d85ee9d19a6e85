"""`trtops gc [PATH...] [--dry-run]`: remove cache entries that no ref and no engine of the
current manifests points at, and the leftovers of interrupted writes.

Runs under the cache's ``publish`` lock, which :func:`trtops.cache.local.publish_entry` also
takes, so an engine being published is never mistaken for garbage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from trtops.commands.args import manifest_paths

PARTIAL_GRACE_SECONDS = 3600.0


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument, add_platform_arguments

    parser = subparsers.add_parser(
        "gc",
        help="remove cache entries no ref or current manifest uses",
        description="Remove engines that are neither the last build of some engine (a ref) "
        "nor the current key of an engine in the manifests, plus partial entries and "
        "staging leftovers older than an hour.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories whose current keys are kept "
                        "(default: manifests/ when it exists)")
    add_cache_argument(parser)
    add_platform_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def current_keys(paths: list[str], store: Any, platform: Any) -> set[str]:
    """Keys of the manifests' engines buildable on ``platform`` (hashing through the memo)."""
    from trtops.plan import (
        compute_digests,
        load_specs,
        match_target,
        memo_for,
        save_memo,
        spec_key,
    )

    specs = load_specs(paths, check_models=False, cache_dir=getattr(store, "root", None))
    memo = memo_for(store)
    digests, data = compute_digests(specs, platform, memo)
    save_memo(memo)
    keys = set()
    for spec in specs:
        match = match_target(spec, platform)
        if match.problem is None:
            keys.add(spec_key(spec, match, digests, data).key)
    return keys


def _entry_size(store: Any, key: str) -> int:
    meta = None
    try:
        meta = store.read_meta(key)
    except Exception:  # noqa: BLE001 - a damaged entry still gets removed
        meta = None
    files = (meta or {}).get("files") or {}
    size = sum(int(f.get("size") or 0) for f in files.values() if isinstance(f, dict))
    return size or int((meta or {}).get("engine_size") or 0)


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.errors import TrtopsError
    from trtops.keys.platform import platform_from_args
    from trtops.names import format_bytes

    store = open_store(args.cache)
    paths = manifest_paths(args, only_existing=True)
    keep_current: set[str] = set()
    warning = None
    if paths:
        try:
            keep_current = current_keys(paths, store, platform_from_args(args))
        except TrtopsError as exc:
            if args.paths:
                raise
            warning = f"could not compute the current keys of {', '.join(paths)} ({exc.message}); " \
                      "keeping referenced entries only"
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    removed: list[dict[str, Any]] = []
    partial: list[str] = []
    leftovers: list[str] = []
    with store.lock("publish"):
        referenced = {record.get("key") for _, record in store.list_refs()}
        keep = referenced | keep_current
        for key in list(store.list_keys()):
            if key in keep:
                continue
            removed.append({"key": key, "size": _entry_size(store, key)})
            if not args.dry_run:
                store.delete_entry(key)
        if hasattr(store, "list_entry_dirs"):
            now = time.time()
            for key in list(store.list_entry_dirs()):
                if store.has_entry(key):
                    continue
                try:
                    age = now - store.entry_dir(key).stat().st_mtime
                except FileNotFoundError:
                    continue
                if age >= PARTIAL_GRACE_SECONDS:
                    partial.append(key)
                    if not args.dry_run:
                        store.delete_entry(key)
        if hasattr(store, "clean_tmp") and not args.dry_run:
            leftovers = store.clean_tmp(PARTIAL_GRACE_SECONDS)
    total = sum(r["size"] for r in removed)
    if args.json:
        json.dump({"cache": store.url, "dry_run": args.dry_run, "removed": removed,
                   "partial": partial, "leftovers": leftovers, "bytes": total,
                   "kept": len(keep)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    for row in removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {row['key']} ({format_bytes(row['size'])})")
    for key in partial:
        print(f"{'would remove' if args.dry_run else 'removed'} partial entry {key}")
    print(f"{verb} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} ({format_bytes(total)})"
          + (f" and {len(partial)} partial" if partial else "")
          + f"; {len(referenced)} referenced, {len(keep_current)} current.")
    return 0
