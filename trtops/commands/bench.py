"""`trtops bench [PATH...] [--engine ID]`: measure accepted cached engines again without
rebuilding them; their perf.json is replaced and judged (budgets, and the measurement it
replaces); exit 6 when one fails its performance gate. The verb is :mod:`trtops.ops.bench`."""

from __future__ import annotations

import argparse
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument, add_output_arguments

    parser = subparsers.add_parser(
        "bench",
        help="measure cached engines again (latency, throughput) without rebuilding them",
        description="Measure accepted engines already in the cache again on this GPU (e.g. "
        "after a driver upgrade), replace their perf.json and check the numbers against "
        "the manifests' performance budgets and against the measurement they replace.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/)")
    parser.add_argument("--engine", action="append", metavar="ID",
                        help="only this engine: manifest/model/precision/target or a key "
                        "prefix (repeatable)")
    add_cache_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.commands.cached_engines import run_on_cached_engines
    from trtops.ops.apply import lock_path_for_apply
    from trtops.ops.bench import bench_plan
    from trtops.ops.lock import record_applied
    from trtops.report import render_result

    plan, store, result = run_on_cached_engines(
        args, "bench",
        lambda plan, store, toolchain: bench_plan(plan, store, toolchain, engines=args.engine))
    lock = lock_path_for_apply(manifest_paths(args), plan, None)
    if lock is not None:
        record_applied(lock, plan, result, store)
    return render_result(result, args)
