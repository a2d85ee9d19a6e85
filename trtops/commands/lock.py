"""`trtops lock [PATH...]`: write or update ``trtops.lock`` from the engines in the cache
(and a remote); the verb is :func:`trtops.ops.lock.update_lock`, the format
:mod:`trtops.lockfile`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trtops.commands.args import lock_platform_from_args, manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import (
        add_cache_argument,
        add_lockfile_argument,
        add_paths_argument,
        add_platform_arguments,
        add_remote_argument,
    )

    parser = subparsers.add_parser(
        "lock",
        help="write trtops.lock: the engine of every manifest engine on every platform",
        description="Write or update trtops.lock beside the manifests (one file per "
        "platform): for every engine of the manifests and every platform it was built for "
        "(or that the lock or --platform names), its key and key components, and when a "
        "cache holds the build, its sha256, size and accuracy verdict ('pending' until "
        "built). Engines of other manifests in the lock are left alone.",
    )
    add_paths_argument(parser, "manifest files or directories (default: manifests/)")
    add_cache_argument(parser)
    add_remote_argument(parser)
    add_lockfile_argument(parser)
    add_platform_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print what changed as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import os

    from trtops.cache import open_store
    from trtops.commands.args import REMOTE_ENV
    from trtops.lockfile import lock_path_for, read_lock
    from trtops.ops.lock import update_lock
    from trtops.plan import load_specs, memo_for

    paths = manifest_paths(args)
    store = open_store(args.cache)
    specs = load_specs(paths, check_models=False, cache_dir=getattr(store, "root", None))
    lock = read_lock(lock_path_for(paths, args.lockfile), missing_ok=True)
    remote_url = args.remote or os.environ.get(REMOTE_ENV)
    stores = ([open_store(remote_url)] if remote_url else []) + [store]
    platform = lock_platform_from_args(args)
    update = update_lock(specs, lock, stores, memo_for(store),
                         platforms=[platform] if platform else [])
    if args.json:
        print(json.dumps({"lock": str(lock.path), "written": [str(p) for p in update.written],
                          "removed": update.removed, "changed": update.changed,
                          "counts": update.counts}, indent=1))
        return 0
    for change in update.changed:
        print(f"locked {change['engine']} on {change['platform']}: {change['key'][:12]} "
              f"({change['state']})")
    for signature in update.removed:
        print(f"removed {lock.path / (signature + '.json')}: no engine of these manifests left")
    for signature, counts in sorted(update.counts.items()):
        if counts:
            text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            print(f"{lock.path}/{signature}.json: {text}")
    if not update.counts:
        from trtops.errors import InputError

        raise InputError(
            "nothing to lock: no engine of these manifests is built in "
            + ", ".join(s.url for s in stores) + ", and the lock names no platform",
            hint="build with `trtops apply`, or lock a platform's keys before building: "
                 "`trtops lock --platform platforms/h100.json`")
    return 0
