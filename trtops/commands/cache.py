"""`trtops cache verify`: re-hash every stored engine against its meta.json.

Reports corrupt entries (engine sha256 or size differs from meta.json, damaged meta.json,
missing engine.plan, a file that differs from the digest meta.json lists) and partial ones
(a directory without meta.json). Exit 1 if any; ``--delete`` removes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
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


def check_entry(store: Any, key: str) -> str | None:
    """Why an entry is corrupt, or None when every file matches meta.json.

    Args:
        store: The cache.
        key: A complete entry's key.

    Returns:
        A reason, or None.
    """
    from trtops.cache.store import ENGINE_FILE
    from trtops.errors import CacheError
    from trtops.keys.fingerprint import key_of

    try:
        meta = store.read_meta(key)
    except CacheError as exc:
        return exc.message
    if meta is None:
        return "meta.json vanished"
    if meta.get("key") not in (None, key):
        return f"meta.json names key {meta.get('key')}"
    components = meta.get("components")
    if isinstance(components, dict) and components and key_of(components) != key:
        return "meta.json components do not hash to the entry key"
    expected = {ENGINE_FILE: {"sha256": meta.get("engine_sha256"), "size": meta.get("engine_size")}}
    for name, info in (meta.get("files") or {}).items():
        if isinstance(info, dict) and name not in expected:
            expected[name] = info
    if not expected[ENGINE_FILE]["sha256"]:
        return "meta.json has no engine_sha256"
    for name, info in expected.items():
        digest = _digest(store, key, name)
        if digest is None:
            return f"{name} is missing"
        sha, size = digest
        if info.get("size") is not None and int(info["size"]) != size:
            return f"{name} has {size} bytes, meta.json says {info['size']}"
        if info.get("sha256") and info["sha256"] != sha:
            return f"{name} sha256 is {sha[:12]}..., meta.json says {str(info['sha256'])[:12]}..."
    return None


def _digest(store: Any, key: str, name: str) -> tuple[str, int] | None:
    from trtops.keys.fingerprint import sha256_file

    entry_dir = getattr(store, "entry_dir", None)
    if entry_dir is not None:  # local: stream the file instead of reading it into memory
        path = entry_dir(key) / name
        try:
            return sha256_file(path)
        except FileNotFoundError:
            return None
    import hashlib

    data = store.read_file(key, name)
    if data is None:
        return None
    return hashlib.sha256(data).hexdigest(), len(data)


def run_verify(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.keys.fingerprint import default_workers

    store = open_store(args.cache)
    keys = list(store.list_keys())
    with ThreadPoolExecutor(max_workers=args.jobs or default_workers()) as pool:
        reasons = list(pool.map(lambda key: check_entry(store, key), keys))
    corrupt = [{"key": k, "problem": r} for k, r in zip(keys, reasons) if r]
    partial = []
    if hasattr(store, "list_entry_dirs"):
        complete = set(keys)
        partial = [k for k in store.list_entry_dirs() if k not in complete and not store.has_entry(k)]
    if args.delete:
        for item in corrupt:
            store.delete_entry(item["key"])
        for key in partial:
            store.delete_entry(key)
    bad = bool(corrupt or partial)
    if args.json:
        json.dump({"cache": store.url, "checked": len(keys), "corrupt": corrupt, "partial": partial,
                   "deleted": bool(args.delete and bad)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for item in corrupt:
            print(f"corrupt {item['key']}: {item['problem']}")
        for key in partial:
            print(f"partial {key}: no meta.json (an interrupted write)")
        ok = len(keys) - len(corrupt)
        print(f"Checked {len(keys)} entr{'y' if len(keys) == 1 else 'ies'}: {ok} ok, "
              f"{len(corrupt)} corrupt, {len(partial)} partial."
              + (" Removed the bad ones." if args.delete and bad else
                 (" `trtops cache verify --delete` removes them." if bad else "")))
    return 1 if bad else 0
