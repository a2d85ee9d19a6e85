"""`trtops gc [PATH...] [--dry-run]`: the arguments and the report; the verb is
:mod:`trtops.ops.gc`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import manifest_paths


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


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.commands.args import cache_url
    from trtops.keys.platform import platform_from_args
    from trtops.names import format_bytes
    from trtops.ops.gc import gc

    store = open_store(cache_url(args), write_for=None if args.dry_run else "gc")
    paths = manifest_paths(args, only_existing=True)
    platform = platform_from_args(args) if paths else None
    result = gc(store, paths, platform, explicit_paths=bool(args.paths), dry_run=args.dry_run)
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    if args.json:
        json.dump({"cache": store.url, "dry_run": args.dry_run, "removed": result.removed,
                   "partial": result.partial, "leftovers": result.leftovers,
                   "bytes": result.bytes, "kept": result.kept}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    removed = result.removed
    for row in removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {row['key']} ({format_bytes(row['size'])})")
    for key in result.partial:
        print(f"{'would remove' if args.dry_run else 'removed'} partial entry {key}")
    print(f"{verb} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} ({format_bytes(result.bytes)})"
          + (f" and {len(result.partial)} partial" if result.partial else "")
          + f"; {result.referenced} referenced, {result.current} current.")
    return 0
