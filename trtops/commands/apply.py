"""`trtops apply [PATH...|PLAN.json]`: build, check and publish what the plan says.

Builds only what this machine can build (GPU and TensorRT match the target) and reports
the rest; engines that fail their accuracy check are kept as rejected and never served.
Exit codes: 0 all good, 3 a build failed, 4 an accuracy check failed, 5 TensorRT or a GPU
is missing, 1 bad input (see the README).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trtops.commands.args import manifest_paths

DEFAULT_EMIT_DIR = "out"


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument, add_output_arguments

    parser = subparsers.add_parser(
        "apply",
        help="build, check and publish the engines the plan says are missing or stale",
        description="Plan (or load a saved plan), then for each engine to build: build it "
        "with TensorRT, compare it with ONNX Runtime (Polygraphy), publish it to the cache "
        "and write its loaders. Engines for other GPUs or TensorRT versions are skipped "
        "with the reason.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/), or one "
                        "plan file saved by `trtops plan -o`")
    add_cache_argument(parser)
    parser.add_argument("--target", action="append", metavar="NAME", dest="targets",
                        help="only engines of this target (repeatable; for CI fan-out)")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on with the other engines after a failure")
    parser.add_argument("--emit-dir", metavar="DIR", default=DEFAULT_EMIT_DIR,
                        help=f"where loaders go (default: ./{DEFAULT_EMIT_DIR}; python/ and "
                        "triton/ below it)")
    parser.add_argument("--no-emit", action="store_true", help="write no loaders")
    parser.add_argument("--engine-ref", default="copy",
                        choices=("copy", "relative", "env", "key", "absolute"),
                        help="how Python loaders find their engine (default: copy it beside)")
    parser.add_argument("--remote", metavar="URL",
                        help="shared cache (s3://bucket/prefix or a directory): fetch hits "
                        "instead of building, push new accepted engines and timing caches")
    parser.add_argument("--lock", action="store_true",
                        help="with --remote: take a build lease per engine so that shards "
                        "of one GPU type build each engine once")
    parser.add_argument("--lock-ttl", type=float, default=300.0, metavar="SECONDS",
                        help="build lease lifetime, renewed while building (default: 300)")
    parser.add_argument("--no-lock-update", action="store_true",
                        help="leave trtops.lock alone (default: record the engines this run "
                        "built, reused or fetched in it, when the lock exists)")
    from trtops.commands.args import add_lockfile_argument

    add_lockfile_argument(parser)
    parser.add_argument("--repair", action="store_true",
                        help="then run `trtops repair` on each engine that failed its accuracy gate: "
                        "publish a passing engine with nodes kept in fp32 and print the keep_fp32 "
                        "patch for the manifest (exit 0 when every one was repaired)")
    parser.add_argument("--log-dir", metavar="DIR",
                        help="also write each build log to DIR (CI artifacts)")
    scale = parser.add_argument_group("scale-out (docs/scale-out.md)")
    scale.add_argument("--executor", choices=("local", "gpus", "ray"), default=None,
                       help="where builds run: local (this process, one after the other; the "
                       "default), gpus (one worker process per GPU here; implied by --gpus), "
                       "ray (tasks on a Ray cluster, routed by GPU model; needs trtops[ray])")
    scale.add_argument("--gpus", metavar="all|0,1", default=None,
                       help="build on these GPUs of this machine at once, one worker process "
                       "each (CUDA indices as `trtops info` lists them)")
    scale.add_argument("--address", metavar="ADDR", default=None,
                       help="with --executor ray: the cluster (HOST:6379, ray://HOST:10001 or "
                       "auto; default: RAY_ADDRESS or a local cluster)")
    scale.add_argument("--ray-timeout", type=float, metavar="SECONDS", default=None,
                       help="with --executor ray: fail a build task not finished this long after "
                       "it was submitted (default: no limit)")
    parser.add_argument("--report", metavar="FILE.html",
                        help="also write the HTML report of this run (engines x targets, "
                        "accuracy, latency, what changed), even when engines failed; see "
                        "`trtops report`")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.commands.args import cache_url
    from trtops.errors import EnvironmentMissing, InputError
    from trtops.ops.apply import ApplyRequest, run_apply
    from trtops.report import check_report_path, render_result, report_refusal

    check_report_path(args.junit)
    check_report_path(args.report, "--report")
    if args.lock and not args.remote:
        raise InputError("--lock needs --remote", hint="leases live in the shared cache")
    request = ApplyRequest(
        paths=manifest_paths(args),
        cache_url=cache_url(args),
        targets=args.targets,
        keep_going=args.keep_going,
        emit_dest=None if args.no_emit else Path(args.emit_dir),
        engine_ref=args.engine_ref,
        remote_url=args.remote,
        lease_ttl=args.lock_ttl if args.lock else None,
        log_dir=Path(args.log_dir) if args.log_dir else None,
        executor=args.executor,
        gpus=args.gpus,
        address=args.address,
        ray_timeout=args.ray_timeout,
        lockfile=args.lockfile,
        update_lock=not args.no_lock_update,
        report=args.report,
    )
    try:
        result = run_apply(request, announce=None if args.json else _to_stderr)
    except EnvironmentMissing as exc:
        # Only a refusal that carries per-engine results has reports to write.
        report_refusal(exc, args)
        if args.report and getattr(exc, "result", None) is not None:
            from trtops.cache import open_store
            from trtops.ops.report import write_run_report

            write_run_report(args.report, exc.result, open_store(request.cache_url))
        raise
    code = render_result(result, args)
    failed = [o.id for o in result.outcomes if o.status in ("accuracy_failed", "rejected")]
    if not args.repair or not failed or code != 4:
        return code  # repair answers accuracy failures only, not builds that failed
    from trtops.commands.repair import report_repairs
    from trtops.ops.repair import RepairRequest, run_repair

    outcomes = []
    for engine in failed:
        outcomes += run_repair(RepairRequest(paths=request.paths, cache_url=request.cache_url, engine=engine),
                               say=_to_stderr)
    return report_repairs(outcomes)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
