"""`trtops pull [PATH...] --remote URL`: fetch the engines this machine can run.

A fleet node asks the remote cache for accepted entries that its own GPU and TensorRT can
run (exact matches, and hardware- or version-compatible engines where the rules allow, see
:mod:`trtops.cache.compat`), one per logical engine (or ``--all``), downloads them in
parallel, verifies every sha256 before anything is renamed into place, and stores them in
the local cache atomically. With ``--dest DIR`` it then writes loaders for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trtops.commands.args import add_jobs_argument, add_remote_argument, remote_url


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
    add_jobs_argument(parser)
    parser.add_argument("--fsync", action="store_true",
                        help="flush every pulled file to disk before its entry becomes visible "
                        "(default: journal the pull and flush later; after a power cut the "
                        "next trtops command re-checks those entries and drops damaged ones)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be pulled, transfer nothing")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.set_defaults(handler=run)


def _platform(args: argparse.Namespace) -> Any:
    from trtops.errors import EnvironmentMissing
    from trtops.keys.platform import platform_from_args

    flags = argparse.Namespace(
        platform=args.platform,
        gpu=None if args.gpu in (None, "auto") else args.gpu,
        compute_capability=args.compute_capability,
        tensorrt=None if args.tensorrt in (None, "auto") else args.tensorrt,
    )
    if flags.gpu is None and flags.compute_capability is not None:
        from trtops.errors import InputError

        raise InputError("--compute-capability needs --gpu NAME",
                         hint="e.g. --gpu 'NVIDIA L4' --compute-capability 8.9")
    platform = platform_from_args(flags)
    if platform.tensorrt is None:
        raise EnvironmentMissing(
            "cannot tell which TensorRT version the engines must run with: TensorRT is not "
            "installed here",
            hint="install TensorRT, or name a version: --tensorrt 10.13.3.9",
        )
    if not platform.gpus:
        note = next((n for n in platform.notes if n.startswith("no GPU")), "no GPU found")
        raise EnvironmentMissing(
            f"cannot tell which engines run here: {note}",
            hint="run on the GPU machine, or name one: --gpu 'NVIDIA L4' --compute-capability 8.9",
        )
    return platform


def _loader_kinds(args: argparse.Namespace, spec: Any | None) -> tuple[str, ...]:
    from trtops.emit.emitter import parse_loaders

    if args.loaders:
        return parse_loaders(args.loaders)
    if spec is not None and getattr(spec, "loaders", None):
        return tuple(spec.loaders)
    return ("python",)


def emit_pulled(local: Any, candidates: list[Any], spec_by_id: dict[str, Any],
                args: argparse.Namespace) -> Any:
    """Write loaders for pulled entries into ``--dest`` (see :mod:`trtops.emit.emitter`).

    Returns:
        The emitter's report (written files, skipped engines with reasons).
    """
    from trtops.emit.emitter import EmitItem, emit_entries

    items = [EmitItem(spec_id=c.spec_id, key=c.key,
                      loaders=_loader_kinds(args, spec_by_id.get(c.spec_id)))
             for c in candidates]
    return emit_entries(local, items, Path(args.dest), engine_ref="copy")


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.cache.sync import human_bytes, pull_entries, select_for_pull
    from trtops.errors import CacheError, InputError
    from trtops.plan import load_specs

    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    platform = _platform(args)
    # A fleet node needs the manifests, not the models: skip checks that read ONNX files.
    specs = load_specs(args.paths, check_models=False, cache_dir=args.cache) if args.paths else []
    spec_by_id = {spec.id: spec for spec in specs}
    if args.paths and not specs:
        raise InputError("the manifests define no engines", hint="check the paths given")
    local = open_store(args.cache)
    remote = open_store(remote_url(args))
    print(f"pulling for {platform.describe()} from {remote.url}", file=sys.stderr)
    selection = select_for_pull(remote, platform, spec_ids=spec_by_id or None,
                                every=args.every, jobs=args.jobs)
    missing = sorted(set(spec_by_id) - {c.spec_id for c in selection.selected})

    if args.dry_run:
        rows = [{"key": c.key, "spec_id": c.spec_id, "action": "pull",
                 "present": local.has_entry(c.key)} for c in selection.selected]
        rows += [{"key": c.key, "spec_id": c.spec_id, "action": "skip", "reason": c.reason}
                 for c in selection.skipped]
        if args.json:
            print(json.dumps({"remote": remote.url, "platform": platform.to_json(),
                              "dry_run": True, "entries": rows, "missing": missing}, indent=2))
        else:
            for row in rows:
                what = "pull" if row["action"] == "pull" else f"skip ({row['reason']})"
                print(f"{what}: {row['spec_id']} ({row['key'][:12]})")
            for spec_id in missing:
                print(f"missing: {spec_id}: no runnable accepted engine on the remote")
        return 0

    outcomes = pull_entries(remote, local, selection.selected, jobs=args.jobs, fsync=args.fsync)
    failed = [o for o in outcomes if o.status == "failed"]
    emitted: list[dict] = []
    emit_skipped: list[dict] = []
    if args.dest and not failed and selection.selected:
        report = emit_pulled(local, selection.selected, spec_by_id, args)
        emitted, emit_skipped = report.written, report.skipped
        for skipped in emit_skipped:
            print(f"warning: no loader for {skipped['engine']}: {skipped['reason']}",
                  file=sys.stderr)
    fetched = [o for o in outcomes if o.status == "fetched"]
    if args.json:
        print(json.dumps({
            "remote": remote.url,
            "platform": platform.to_json(),
            "entries": [o.__dict__ for o in outcomes],
            "skipped": [{"key": c.key, "spec_id": c.spec_id, "reason": c.reason}
                        for c in selection.skipped],
            "missing": missing,
            "emitted": emitted,
            "emit_skipped": emit_skipped,
        }, indent=2))
    for spec_id in missing:
        print(f"missing: {spec_id}: no runnable accepted engine on the remote", file=sys.stderr)
    print(f"pulled {len(fetched)} entries ({human_bytes(sum(o.size for o in fetched))}); "
          f"{len(outcomes) - len(fetched) - len(failed)} already present, "
          f"{len(selection.skipped)} not runnable here or not preferred"
          + (f"; wrote {len(emitted)} loader(s) into {args.dest}" if emitted else ""),
          file=sys.stderr)
    if failed:
        raise CacheError(
            f"{len(failed)} of {len(outcomes)} entries failed to pull (first: "
            f"{failed[0].spec_id}: {failed[0].detail})",
            hint="nothing partial was written; fix what the lines above say (the remote "
                 "unreachable, a full disk, a corrupt remote entry) and run `trtops pull` again",
        )
    if missing or emit_skipped:
        return 1
    return 0
