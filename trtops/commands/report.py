"""`trtops report [PATH...] -o FILE.html`: the HTML report of what the cache holds for the
manifests' engines (state, accuracy, performance, what changed), without running anything;
the verb is :mod:`trtops.ops.report`.

Exit codes: 0 the page is written (whatever the engines' states: it reports, it does not
gate), 1 bad input (a manifest, the output path).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument

    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page: engines x targets, accuracy, latency",
        description="Write the HTML report of the engines the cache holds for the manifests "
        "(every ref of the cache without manifests): the engines x targets matrix with "
        "state, accuracy per output (error histograms), latency and throughput, build time "
        "and size, and what changed since the previous engine. Reads only the cache: "
        "nothing is built or measured. In GitHub Actions a compact version goes to the "
        "step summary.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/ when it exists)")
    add_cache_argument(parser)
    parser.add_argument("-o", "--output", metavar="FILE.html", required=True,
                        help="where the page goes (its folder is created)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.commands.args import cache_url
    from trtops.ops.report import ReportRequest, run_report
    from trtops.report import check_report_path
    from trtops.report.common import status_label

    check_report_path(args.output, "-o")
    page, written = run_report(ReportRequest(paths=manifest_paths(args, only_existing=True),
                                             cache_url=cache_url(args), output=args.output))
    counts = ", ".join(f"{count} {status_label(state)}" for state, count in page.counts())
    print(f"report: {len(page.engines)} engine(s) ({counts or 'none'}) -> {written}",
          file=sys.stderr)
    return 0
