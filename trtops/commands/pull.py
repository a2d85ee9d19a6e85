"""`trtops pull [PATH...] --remote URL`: the arguments and the report; the verb (select
the engines this machine can run, fetch them verified, write loaders with ``--dest``) is
:mod:`trtops.ops.pull`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import (
    add_jobs_argument,
    add_lockfile_argument,
    add_remote_argument,
    remote_url,
)


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument

    parser = subparsers.add_parser(
        "pull",
        help="fetch the engines this machine can run from a remote cache",
        description="Download accepted engines that this machine's GPU and TensorRT can run "
        "(optionally only those of the given manifests) into the local cache, verified by "
        "sha256 and written atomically; with --dest also emit loaders for them.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories: only their engines (default: "
                        "every engine on the remote that runs here)")
    add_remote_argument(parser)
    add_cache_argument(parser)
    parser.add_argument("--dest", metavar="DIR",
                        help="write loaders for the pulled engines into DIR")
    parser.add_argument("--loaders", metavar="LIST", default=None,
                        help="loaders to write into --dest: python, triton (default: what "
                        "each manifest asks for, else python)")
    group = parser.add_argument_group("platform (default: this machine)")
    group.add_argument("--gpu", default="auto", metavar="NAME|auto",
                       help="GPU product name as NVML reports it, e.g. 'NVIDIA L4' (needs "
                       "--compute-capability), or auto to detect")
    group.add_argument("--compute-capability", dest="compute_capability", metavar="X.Y",
                       help="compute capability of --gpu, e.g. 8.9")
    group.add_argument("--tensorrt", default="auto", metavar="VERSION|auto",
                       help="TensorRT version, e.g. 10.13.3.9, or auto to detect")
    group.add_argument("--platform", metavar="FILE",
                       help="use the machine described in FILE (`trtops info --json -o FILE`)")
    parser.add_argument("--all", dest="every", action="store_true",
                        help="pull every runnable accepted entry, not one per engine")
    parser.add_argument("--locked", action="store_true",
                        help="pull exactly the engines the lock (trtops.lock beside the "
                        "manifests, or --lockfile) names for this platform, each checked "
                        "against the lock's sha256; exit 1 when the lock does not cover "
                        "this platform")
    add_lockfile_argument(parser)
    add_jobs_argument(parser)
    parser.add_argument("--fsync", action="store_true",
                        help="flush every pulled file to disk before its entry becomes visible "
                        "(default: journal the pull and flush later; after a power cut the "
                        "next trtops command re-checks those entries and drops damaged ones)")
    parser.add_argument("--with-logs", dest="with_logs", action="store_true",
                        help="also fetch each entry's build.log (default: left on the "
                        "remote; trtops never reads it, and the entry is sound without it)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be pulled, transfer nothing")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.commands.args import cache_url, manifest_paths
    from trtops.errors import CacheError, InputError
    from trtops.names import format_bytes
    from trtops.ops.pull_run import PullRequest, run_pull
    from trtops.textsafe import terminal_safe

    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    request = PullRequest(
        remote_url=remote_url(args), cache_url=cache_url(args), paths=list(args.paths),
        lock_paths=manifest_paths(args), platform_file=args.platform, gpu=args.gpu,
        compute_capability=args.compute_capability, tensorrt=args.tensorrt,
        every=args.every, locked=args.locked, lockfile=args.lockfile, jobs=args.jobs,
        fsync=args.fsync, dry_run=args.dry_run, dest=args.dest, loaders=args.loaders,
        with_logs=args.with_logs)
    pulled = run_pull(request, announce=lambda line: print(line, file=sys.stderr))
    result, platform, remote, local = pulled.result, pulled.platform, pulled.remote, pulled.local
    selection, missing = result.selection, result.missing

    if args.dry_run:
        rows = result.dry_run_rows(local)
        if args.json:
            print(json.dumps({"remote": remote.url, "platform": platform.to_json(),
                              "dry_run": True, "entries": rows, "missing": missing}, indent=2))
        else:
            for row in rows:
                what = "pull" if row["action"] == "pull" else f"skip ({row['reason']})"
                print(terminal_safe(f"{what}: {row['spec_id']} ({row['key'][:12]})", limit=None))
            for spec_id in missing:
                print(terminal_safe(f"missing: {spec_id}: no runnable accepted engine on the remote", limit=None))
        return 0

    outcomes, failed, fetched = result.outcomes, result.failed, result.fetched
    for skipped in result.emit_skipped:
        print(terminal_safe(f"warning: no loader for {skipped['engine']}: {skipped['reason']}", limit=None),
              file=sys.stderr)
    if args.json:
        print(json.dumps({
            "remote": remote.url,
            "platform": platform.to_json(),
            "entries": [o.__dict__ for o in outcomes],
            "skipped": [{"key": c.key, "spec_id": c.spec_id, "reason": c.reason}
                        for c in selection.skipped],
            "missing": missing,
            "damaged": len(selection.damaged),
            "emitted": result.emitted,
            "emit_skipped": result.emit_skipped,
        }, indent=2))
    for spec_id in missing:
        print(terminal_safe(f"missing: {spec_id}: no runnable accepted engine on the remote", limit=None), file=sys.stderr)
    damaged = selection.damaged
    for candidate in damaged:
        print(terminal_safe(f"warning: skipped remote entry {candidate.key[:12]}: "
                            f"{candidate.reason}", limit=None), file=sys.stderr)
    print(f"pulled {len(fetched)} entries ({format_bytes(sum(o.size for o in fetched))}); "
          f"{len(outcomes) - len(fetched) - len(failed)} already present, "
          f"{len(selection.skipped) - len(damaged)} not runnable here or not preferred, "
          f"{len(damaged)} damaged (skipped)"
          + (f"; wrote {len(result.emitted)} loader(s) into {args.dest}" if result.emitted else ""),
          file=sys.stderr)
    if failed:
        raise CacheError(
            f"{len(failed)} of {len(outcomes)} entries failed to pull (first: "
            f"{failed[0].spec_id}: {failed[0].detail})",
            hint="nothing partial was written; fix what the lines above say (the remote "
                 "unreachable, a full disk, a corrupt remote entry) and run `trtops pull` again",
        )
    if missing or result.emit_skipped:
        return 1
    return 0
