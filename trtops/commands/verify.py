"""`trtops verify [PATH...]`: re-check cached engines with the manifests' current accuracy
settings; engines that now fail become rejected (exit 4), engines that now pass accepted."""

from __future__ import annotations

import argparse
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument, add_output_arguments

    parser = subparsers.add_parser(
        "verify",
        help="re-check cached engines against ONNX Runtime (e.g. after changing tolerances)",
        description="Run the accuracy gate again on engines already in the cache, with the "
        "manifests' current tolerances and inputs, and record the new verdict.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/)")
    add_cache_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.errors import EnvironmentMissing
    from trtops.ops.plan import platform_here
    from trtops.ops.toolchain import default_toolchain
    from trtops.ops.verify import reverify_plan
    from trtops.plan import make_plan
    from trtops.report import check_report_path, render_result, report_refusal

    check_report_path(args.junit)
    store = open_store(args.cache)
    toolchain = default_toolchain()
    plan = make_plan(manifest_paths(args), store, platform_here(toolchain))
    try:
        result = reverify_plan(plan, store, toolchain)
    except EnvironmentMissing as exc:
        report_refusal(exc, args)
        raise
    return render_result(result, args)
