"""`trtops gc [PATH...] [--remote URL] [--keep-lock FILE...] [--older-than D] [--dry-run]`:
the arguments and the report; the verbs are :mod:`trtops.ops.gc`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import (
        add_cache_argument,
        add_lockfile_argument,
        add_platform_arguments,
    )

    parser = subparsers.add_parser(
        "gc",
        help="remove cache entries no ref, manifest or lock uses",
        description="Local cache: remove engines that no ref (the last build or pull of "
        "an engine), no current key of the manifests and no lock names, plus partial "
        "entries and staging leftovers older than an hour. Remote cache (--remote, or an "
        "s3:// --cache): only with a scope, --keep-lock and/or --older-than; without one "
        "it refuses. Every removal is logged on stderr with its engine name.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories whose current keys and lock are "
                        "kept (default: manifests/ when it exists)")
    add_cache_argument(parser)
    parser.add_argument("--remote", metavar="URL", default=None,
                        help="collect garbage in this remote cache (s3://... or a directory) "
                        "instead of the local one; needs --keep-lock and/or --older-than")
    parser.add_argument("--keep-lock", metavar="FILE", nargs="+", action="extend", default=[],
                        dest="keep_locks",
                        help="keep every engine these locks name (trtops.lock directories or "
                        "platform files; the locks of every branch and tag still deployed)")
    parser.add_argument("--older-than", metavar="DURATION", default=None,
                        help="remove only entries built longer ago than this (90m, 12h, 30d, 2w)")
    add_lockfile_argument(parser)
    add_platform_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary on stdout (removals stay logged on stderr)")
    parser.set_defaults(handler=run)


def _local_locks(args: argparse.Namespace, paths: list[str]) -> list[Any]:
    """The lock beside the manifests (when there is one) for a local gc."""
    from trtops.errors import InputError
    from trtops.lockfile import lock_path_for, read_lock

    if not paths and not args.lockfile:
        return []
    try:
        path = lock_path_for(paths, args.lockfile)
    except InputError:
        return []  # manifests of several directories and no --lockfile: no one lock
    lock = read_lock(path, missing_ok=not args.lockfile)
    return [lock] if lock.sections else []


def run(args: argparse.Namespace) -> int:
    from trtops.cache import is_remote, open_store
    from trtops.lockfile import read_locks
    from trtops.names import format_bytes, parse_duration
    from trtops.ops.gc import gc, remote_gc

    older_than = parse_duration(args.older_than) if args.older_than else None
    keep_locks = read_locks(args.keep_locks)
    remote = bool(args.remote) or is_remote(args.cache or "")
    store = open_store(args.remote or args.cache)
    verb = "would remove" if args.dry_run else "removed"

    def log_removal(row: dict[str, Any]) -> None:
        where = f" on {row['platform']}" if row["platform"] else ""
        print(f"gc: {verb} {row['engine']}{where} ({row['key'][:12]}, "
              f"{format_bytes(row['size'])}) from {store.url}", file=sys.stderr)

    if remote:
        result = remote_gc(store, locks=keep_locks, older_than=older_than,
                           dry_run=args.dry_run, on_remove=log_removal)
    else:
        from trtops.keys.platform import platform_from_args

        paths = manifest_paths(args, only_existing=True)
        platform = platform_from_args(args) if paths else None
        result = gc(store, paths, platform, explicit_paths=bool(args.paths),
                    dry_run=args.dry_run, locks=keep_locks + _local_locks(args, paths),
                    older_than=older_than, on_remove=log_removal)
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    removed = result.removed
    summary = (f"{verb.capitalize()} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} "
               f"({format_bytes(result.bytes)})"
               + (f" and {len(result.partial)} partial" if result.partial else "")
               + f"; kept {result.referenced} referenced, {result.current} current, "
               f"{result.locked} locked"
               + (f", {result.too_young} younger than {args.older_than}" if older_than else "")
               + ".")
    if args.json:
        json.dump({"cache": store.url, "remote": remote, "dry_run": args.dry_run,
                   "removed": removed, "partial": result.partial, "leftovers": result.leftovers,
                   "bytes": result.bytes, "kept": result.kept, "referenced": result.referenced,
                   "current": result.current, "locked": result.locked,
                   "too_young": result.too_young}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        print(summary, file=sys.stderr)
        return 0
    for key in result.partial:
        print(f"{verb} partial entry {key}")
    print(summary)
    return 0
