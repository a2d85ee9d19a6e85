"""`trtops status [PATH...]`: the arguments and the table; the verb is
:mod:`trtops.ops.status`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument

    parser = subparsers.add_parser(
        "status",
        help="list engines in the cache: key, state, size, age, latency/throughput, accuracy",
        description="List every engine the cache has a ref for (the last build of each "
        "manifest/model/precision/target) and, when manifests are found, their engines that "
        "were never built.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/ when it exists)")
    add_cache_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.commands.args import cache_url
    from trtops.names import format_bytes
    from trtops.ops.status import format_age, status
    from trtops.textsafe import terminal_safe

    store = open_store(cache_url(args))
    rows, unreferenced = status(store, manifest_paths(args, only_existing=True))
    if args.json:
        json.dump({"cache": store.url, "engines": rows, "unreferenced_entries": unreferenced},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print(f"No engines in {store.url} yet; `trtops plan` shows what `trtops apply` would build.")
        return 0
    from trtops.ops.status import perf_text

    table = [("ENGINE", "KEY", "STATE", "SIZE", "AGE", "PERF", "ACCURACY")]
    for row in rows:
        table.append((
            row["engine"],
            (row["key"] or "-")[:12],
            row["state"],
            format_bytes(row["size"]) if row["size"] is not None else "-",
            format_age(row["age_seconds"]) if row["age_seconds"] is not None else "-",
            perf_text(row.get("perf")),
            row["accuracy"] or "",
        ))
    widths = [max(len(r[i]) for r in table) for i in range(6)]
    for line in table:
        # Engine ids and accuracy summaries come from cache metadata (maybe pulled): escaped.
        print(terminal_safe("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:6]))
                            + "  " + line[6], limit=None))
    if unreferenced:
        print(f"\n{unreferenced} unreferenced entr{'y' if unreferenced == 1 else 'ies'} "
              "(`trtops gc` removes them)")
    return 0
