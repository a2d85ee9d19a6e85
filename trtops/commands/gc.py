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


def run(args: argparse.Namespace) -> int:
    from trtops.commands.args import cache_url
    from trtops.keys.platform import platform_from_args
    from trtops.names import format_bytes, parse_duration
    from trtops.ops.gc import GcRequest, run_gc

    older_than = parse_duration(args.older_than) if args.older_than else None
    verb = "would remove" if args.dry_run else "removed"

    def log_removal(row: dict[str, Any], cache: str) -> None:
        where = f" on {row['platform']}" if row["platform"] else ""
        print(f"gc: {verb} {row['engine']}{where} ({row['key'][:12]}, "
              f"{format_bytes(row['size'])}) from {cache}", file=sys.stderr)

    request = GcRequest(
        cache_url=cache_url(args),
        remote_url=args.remote,
        # Only read for a local gc (a remote gc needs no manifests): default folders
        # that do not exist are dropped.
        paths=manifest_paths(args, only_existing=True),
        explicit_paths=bool(args.paths),
        platform=lambda: platform_from_args(args),
        keep_locks=args.keep_locks,
        lockfile=args.lockfile,
        older_than=older_than,
        dry_run=args.dry_run,
    )
    result = run_gc(request, on_remove=log_removal)
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    from trtops.textsafe import terminal_safe

    for row in result.prepared_removed:
        print(f"gc: {verb} prepared model {row['digest'][:12]} of {terminal_safe(row['source'])} "
              f"({format_bytes(row['size'])}) from {result.cache}", file=sys.stderr)
    removed = result.removed
    prepared = result.prepared_removed
    summary = (f"{verb.capitalize()} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} "
               f"({format_bytes(result.bytes)})"
               + (f" and {len(result.partial)} partial" if result.partial else "")
               + (f", {len(prepared)} prepared model{'' if len(prepared) == 1 else 's'} "
                  f"({format_bytes(sum(row['size'] for row in prepared))})" if prepared else "")
               + f"; kept {result.referenced} referenced, {result.current} current, "
               f"{result.locked} locked"
               + (f", {result.too_young} younger than {args.older_than}" if older_than else "")
               + (f", {result.prepared_in_use} prepared in use" if result.prepared_in_use else "")
               + ".")
    if args.json:
        json.dump({"cache": result.cache, "remote": result.remote, "dry_run": args.dry_run,
                   "removed": removed, "partial": result.partial, "leftovers": result.leftovers,
                   "bytes": result.bytes, "kept": result.kept, "referenced": result.referenced,
                   "current": result.current, "locked": result.locked,
                   "too_young": result.too_young, "prepared_removed": prepared,
                   "prepared_kept": result.prepared_kept, "prepared_in_use": result.prepared_in_use},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        print(summary, file=sys.stderr)
        return 0
    for key in result.partial:
        print(f"{verb} partial entry {key}")
    print(summary)
    return 0
