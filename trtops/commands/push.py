"""`trtops push [KEY...] --remote URL`: the arguments and the report; the verb is
:mod:`trtops.ops.push`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import remote_url


def register(subparsers: Any) -> None:
    from trtops.commands.args import (
        add_cache_argument,
        add_jobs_argument,
        add_remote_argument,
    )

    parser = subparsers.add_parser(
        "push",
        help="publish accepted local engines to a remote cache",
        description="Upload accepted entries of the local cache (all, or the given keys) to "
        "a remote cache with create-only writes. Rejected and unverified entries are never "
        "pushed. Credentials come from the standard AWS environment and config files.",
    )
    parser.add_argument("keys", nargs="*", metavar="KEY",
                        help="engine keys or unique key prefixes (default: every accepted entry)")
    add_remote_argument(parser)
    add_cache_argument(parser)
    add_jobs_argument(parser)
    parser.add_argument("--no-timing-cache", dest="timing_cache", action="store_false",
                        help="do not upload timing caches")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be pushed, transfer nothing")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.errors import CacheError, InputError
    from trtops.names import format_bytes
    from trtops.ops.push import plan_push, push, resolve_keys
    from trtops.textsafe import terminal_safe

    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    local = open_store(args.cache)
    remote = open_store(remote_url(args))
    keys = resolve_keys(local, args.keys) or None
    if args.dry_run:
        rows = plan_push(local, remote, keys)
        if args.json:
            print(json.dumps({"remote": remote.url, "dry_run": True, "entries": rows}, indent=2))
        else:
            for row in rows:
                print(terminal_safe(f"{row['action']:<28} {row['spec_id'] or '?'} ({row['key'][:12]})", limit=None))
        return 0

    result = push(local, remote, keys, jobs=args.jobs, timing_caches=args.timing_cache)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    outcomes = result.outcomes
    counts = result.counts()
    if args.json:
        print(json.dumps({
            "remote": remote.url,
            "entries": [o.__dict__ for o in outcomes],
            "timing_caches": result.timing_caches,
            "counts": counts,
        }, indent=2))
    for outcome in outcomes:
        if outcome.status == "skipped":
            print(terminal_safe(f"skipped {outcome.spec_id} ({outcome.key[:12]}): {outcome.detail}", limit=None),
                  file=sys.stderr)
    summary = (f"pushed {counts.get('created', 0)} entries ({format_bytes(result.pushed_bytes)}) "
               f"to {remote.url}; {counts.get('exists', 0)} already there, "
               f"{counts.get('skipped', 0)} skipped (not accepted)")
    if counts.get("different"):
        summary += f", {counts['different']} differ from the remote (kept the remote ones)"
    if result.timing_caches:
        summary += f"; {len(result.timing_caches)} timing cache(s) uploaded"
    print(summary, file=sys.stderr)
    failed = result.failed
    if failed:
        raise CacheError(f"{len(failed)} of {len(outcomes)} entries failed to push "
                         f"(first: {failed[0].spec_id}: {failed[0].detail})",
                         hint="fix the cause and run `trtops push` again; pushed entries are kept")
    if keys is not None and any(o.status == "skipped" for o in outcomes):
        return 1  # the user named an entry that could not be pushed
    return 0
