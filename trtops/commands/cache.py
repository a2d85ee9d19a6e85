"""`trtops cache verify`: re-hash every stored engine against its meta.json (the verb is
:mod:`trtops.ops.cache_verify`).

Reports corrupt entries (engine sha256 or size differs from meta.json, damaged meta.json,
missing engine.plan, a file that differs from the digest meta.json lists) and partial ones
(a directory without meta.json). Exit 1 if any; ``--delete`` removes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument

    parser = subparsers.add_parser(
        "cache",
        help="inspect and check the engine cache",
        description="Engine cache maintenance.",
    )
    sub = parser.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    verify = sub.add_parser(
        "verify",
        help="re-hash every engine against meta.json; report corrupt or partial entries",
        description="Re-hash every stored engine.plan (and every file meta.json lists) and "
        "compare with meta.json. Exit 1 when an entry is corrupt or partial.",
    )
    add_cache_argument(verify)
    verify.add_argument("--json", action="store_true", help="print the findings as JSON")
    verify.add_argument("--delete", action="store_true", help="remove corrupt and partial entries")
    verify.add_argument("-j", "--jobs", type=int, default=None, help="hashing threads (default: cores)")
    verify.set_defaults(handler=run_verify)
    parser.set_defaults(handler=_help(parser))


def _help(parser: argparse.ArgumentParser):
    def show(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 1
    return show


def run_verify(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.ops.cache_verify import verify_cache
    from trtops.textsafe import terminal_safe

    store = open_store(args.cache)
    found = verify_cache(store, jobs=args.jobs, delete=args.delete)
    corrupt, partial, bad = found.corrupt, found.partial, found.bad
    if args.json:
        json.dump({"cache": store.url, "checked": found.checked, "corrupt": corrupt,
                   "partial": partial, "deleted": found.deleted}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for item in corrupt:
            print(terminal_safe(f"corrupt {item['key']}: {item['problem']}", limit=None))
        for key in partial:
            print(f"partial {key}: no meta.json (an interrupted write)")
        checked = found.checked
        ok = checked - len(corrupt)
        print(f"Checked {checked} entr{'y' if checked == 1 else 'ies'}: {ok} ok, "
              f"{len(corrupt)} corrupt, {len(partial)} partial."
              + (" Removed the bad ones." if args.delete and bad else
                 (" `trtops cache verify --delete` removes them." if bad else "")))
    return 1 if bad else 0
