"""`trtops verify [PATH...]`: re-check cached engines with the manifests' current accuracy
settings; engines that now fail become rejected (exit 4), engines that now pass accepted."""

from __future__ import annotations

import argparse
from typing import Any


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
    from trtops.commands.cached_engines import run_on_cached_engines
    from trtops.ops.verify import reverify_plan
    from trtops.report import render_result

    _, _, result = run_on_cached_engines(args, "verify", reverify_plan)
    return render_result(result, args)
