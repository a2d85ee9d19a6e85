"""`trtops plan [PATH...]`: show what apply would build, rebuild, reuse or skip, and why.

Terraform-like output (colors on a terminal; plain in pipes and CI), ``--json`` for tools,
``-o plan.json`` to save a plan that ``trtops apply plan.json`` runs exactly, and
``--detailed-exitcode``: 0 nothing to build, 2 builds pending.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument, add_platform_arguments

    parser = subparsers.add_parser(
        "plan",
        help="show what apply would build, rebuild, reuse or skip, and why",
        description="Compare manifests with the engine cache and the platform and list one "
        "action per engine: build, rebuild (with what changed), reuse, skip (not buildable "
        "here) or rejected (failed its accuracy check).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/)")
    add_cache_argument(parser)
    add_platform_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    parser.add_argument("-o", "--out", metavar="FILE",
                        help="save the plan to FILE for `trtops apply FILE`")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when nothing is to be built, 2 when builds are pending")
    parser.add_argument("--all", action="store_true", dest="show_all",
                        help="also list engines that are up to date")
    parser.add_argument("--check-lock", action="store_true",
                        help="only check that the manifests give the keys trtops.lock names "
                        "(every platform file, or only the platform given); exit 1 naming "
                        "each engine that differs and what changed")
    from trtops.commands.args import add_lockfile_argument

    add_lockfile_argument(parser)
    parser.add_argument("--matrix", action="store_true",
                        help="print only the JSON list of targets with builds pending, one "
                        "line, for a CI job matrix (see docs/ci.md)")
    parser.set_defaults(handler=run)


def print_plan(plan: Any, *, show_all: bool = False) -> None:
    """Render a plan on stdout: rich styles on a terminal, plain text otherwise."""
    from trtops import console
    from trtops.plan import render_lines

    lines = render_lines(plan, show_all=show_all)
    mode = console.detect(sys.stdout)
    if not mode.interactive:
        for _, text in lines:
            print(text)
        return
    from rich.text import Text

    out = console.out()
    for style, text in lines:
        out.print(Text(text, style=style or ""), soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.errors import ExitCode
    from trtops.keys.platform import platform_from_args
    from trtops.plan import make_plan

    paths = manifest_paths(args)
    store = open_store(args.cache)
    if args.check_lock:
        return check_lock(args, paths, store)
    platform = platform_from_args(args)
    plan = make_plan(paths, store, platform)
    if args.out:
        plan.save(args.out)
    if getattr(args, "matrix", False):
        from trtops.report import matrix_from_plan

        sys.stdout.write(json.dumps(matrix_from_plan(plan), separators=(",", ":")) + "\n")
        return int(ExitCode.CHANGES_PENDING if args.detailed_exitcode and plan.pending else ExitCode.OK)
    if args.json:
        json.dump(plan.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_plan(plan, show_all=args.show_all)
        if args.out:
            print(f"\nSaved the plan to {args.out}; `trtops apply {args.out}` runs exactly this plan.")
    from trtops.report import emit_ci_reports, result_from_plan

    code = ExitCode.CHANGES_PENDING if args.detailed_exitcode and plan.pending else ExitCode.OK
    # In GitHub Actions: step summary and annotations (rejected engines); no-op elsewhere.
    emit_ci_reports(result_from_plan(plan), exit_code=int(code))
    return int(code)


def check_lock(args: argparse.Namespace, paths: list[str], store: Any) -> int:
    """``plan --check-lock``: print each engine whose key differs from the lock; exit 1
    when any does."""
    from trtops.commands.args import lock_platform_from_args
    from trtops.errors import InputError
    from trtops.lockfile import lock_path_for, read_lock
    from trtops.ops.lock import check_lock as compare
    from trtops.plan import load_specs, memo_for

    cache_dir = getattr(store, "root", None)
    specs = load_specs(paths, check_models=False, cache_dir=cache_dir)
    lock = read_lock(lock_path_for(paths, args.lockfile))
    platform = lock_platform_from_args(args)
    drifts = compare(specs, lock, memo_for(store),
                     platform=platform.as_platform() if platform else None)
    if args.json:
        json.dump({"lock": str(lock.path), "matches": not drifts,
                   "engines": [d.to_json() for d in drifts]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for drift in drifts:
            print(drift.render())
    if drifts:
        raise InputError(
            f"the manifests do not match {lock.path}: {len(drifts)} engine(s) differ",
            hint="update the lock in this change: `trtops lock` (keys of unbuilt engines are "
                 "locked as pending; `apply` fills them in)")
    if not args.json:
        count = sum(len(s.engines) for s in lock.sections.values())
        print(f"{lock.path} matches the manifests ({count} engine(s) on "
              f"{len(lock.sections)} platform(s)).")
    return 0
