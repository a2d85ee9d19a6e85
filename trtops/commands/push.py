"""`trtops push [KEY...] --remote URL`: publish accepted local entries to a remote cache.

Writes are create-only: when several machines push the same engine at once exactly one
object is created and the others confirm that its sha256 equals theirs. Rejected and
unverified entries are never pushed. Timing caches the remote does not have yet are
uploaded too (never overwriting a remote one: merging needs TensorRT, `apply` does it).
"""

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


def resolve_keys(store: Any, given: list[str]) -> list[str]:
    """Expand unique key prefixes (at least 6 hex digits) against a store's keys.

    Raises:
        InputError: for unknown or ambiguous prefixes.
    """
    import re

    from trtops.errors import InputError

    if not given:
        return []
    known = None
    keys = []
    for text in given:
        text = text.strip().lower()
        if re.fullmatch(r"[0-9a-f]{64}", text):
            keys.append(text)
            continue
        if not re.fullmatch(r"[0-9a-f]{6,63}", text):
            raise InputError(f"{text!r} is not an engine key",
                             hint="give a key or a prefix of at least 6 hex digits")
        if known is None:
            known = list(store.list_keys())
        matches = [k for k in known if k.startswith(text)]
        if len(matches) != 1:
            raise InputError(
                f"key prefix {text!r} matches {len(matches)} entries in {store.url}",
                hint="give more digits" if matches else "list entries with `trtops status`",
            )
        keys.append(matches[0])
    return list(dict.fromkeys(keys))


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.cache.sync import (
        human_bytes,
        list_timing_caches,
        push_entries,
        push_timing_cache,
    )
    from trtops.errors import CacheError, InputError

    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    local = open_store(args.cache)
    remote = open_store(remote_url(args))
    keys = resolve_keys(local, args.keys) or None
    if args.dry_run:
        from trtops.cache.local import entry_state

        rows = []
        for key in keys if keys is not None else list(local.list_keys()):
            meta = local.read_meta(key) or {}
            state = entry_state(local, key) or "missing"
            action = "push" if state == "accepted" else f"skip ({state})"
            if state == "accepted" and remote.has_entry(key):
                action = "skip (already on the remote)"
            rows.append({"key": key, "spec_id": meta.get("spec_id"), "action": action})
            if not args.json:
                print(f"{action:<28} {meta.get('spec_id', '?')} ({key[:12]})")
        if args.json:
            print(json.dumps({"remote": remote.url, "dry_run": True, "entries": rows}, indent=2))
        return 0

    outcomes = push_entries(local, remote, keys, jobs=args.jobs)
    timing = []
    if args.timing_cache and keys is None:
        for tensorrt, signature in list_timing_caches(local):
            try:
                if push_timing_cache(local, remote, tensorrt, signature):
                    timing.append(f"{tensorrt}/{signature}")
            except CacheError as exc:
                print(f"warning: timing cache {tensorrt}/{signature} not pushed: {exc.message}",
                      file=sys.stderr)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    pushed_bytes = sum(o.size for o in outcomes if o.status == "created")
    if args.json:
        print(json.dumps({
            "remote": remote.url,
            "entries": [o.__dict__ for o in outcomes],
            "timing_caches": timing,
            "counts": counts,
        }, indent=2))
    for outcome in outcomes:
        if outcome.status == "skipped":
            print(f"skipped {outcome.spec_id} ({outcome.key[:12]}): {outcome.detail}",
                  file=sys.stderr)
    summary = (f"pushed {counts.get('created', 0)} entries ({human_bytes(pushed_bytes)}) to "
               f"{remote.url}; {counts.get('exists', 0)} already there, "
               f"{counts.get('skipped', 0)} skipped (not accepted)")
    if counts.get("different"):
        summary += f", {counts['different']} differ from the remote (kept the remote ones)"
    if timing:
        summary += f"; {len(timing)} timing cache(s) uploaded"
    print(summary, file=sys.stderr)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise CacheError(f"{len(failed)} of {len(outcomes)} entries failed to push "
                         f"(first: {failed[0].spec_id}: {failed[0].detail})",
                         hint="fix the cause and run `trtops push` again; pushed entries are kept")
    if keys is not None and any(o.status == "skipped" for o in outcomes):
        return 1  # the user named an entry that could not be pushed
    return 0
