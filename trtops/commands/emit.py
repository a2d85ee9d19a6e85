"""`trtops emit [PATH...] --dest DIR`: write Python loaders and Triton model repositories
for the accepted engines in the cache.

With manifests (PATH, or ./manifests when it exists) each engine of the manifests is taken
from the cache through its ref (the last build of manifest/model/precision/target), with
the manifest's ``loaders:`` unless ``--loaders`` is given. Without manifests, every engine
the cache has a ref for is emitted. Reads the cache only: no TensorRT, no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument
    from trtops.emit.registry import ENGINE_REFS, LOADER_NAMES

    parser = subparsers.add_parser(
        "emit",
        help="write Python loaders and Triton model repositories for accepted engines",
        description="Write, for every accepted engine, a standalone Python loader module "
        "(DIR/python/<model>_<precision>_<target>.py, needing only tensorrt, numpy and "
        "pycuda or cuda-python) and/or a Triton model (DIR/triton/<model>_<precision>/). "
        "Engines whose accuracy check failed are never emitted.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/ when it "
                        "exists; otherwise every engine the cache has a ref for)")
    parser.add_argument("--dest", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--loaders", metavar="LIST", default=None,
                        help=f"comma-separated loaders: {', '.join(LOADER_NAMES)} (default: each "
                        "model's loaders: in its manifest; python without manifests)")
    parser.add_argument("--engine-ref", choices=ENGINE_REFS, default="copy",
                        help="how Python loaders find their engine: copy it next to the "
                        "module (default), a path relative to the module, an environment "
                        "variable, the cache key (under $TRTOPS_CACHE), or an absolute path")
    add_cache_argument(parser)
    parser.add_argument("--model", action="append", default=None, metavar="NAME",
                        help="only this model (repeatable)")
    parser.add_argument("--precision", action="append", default=None, metavar="P",
                        help="only this precision (repeatable)")
    parser.add_argument("--target", action="append", default=None, metavar="NAME",
                        help="only this target (repeatable)")
    parser.add_argument("--include-unverified", action="store_true",
                        help="also emit engines whose accuracy was never checked")
    triton = parser.add_argument_group("Triton")
    triton.add_argument("--triton-version", type=int, default=1, metavar="N",
                        help="model version directory (default 1)")
    triton.add_argument("--triton-instances", type=int, default=1, metavar="N",
                        help="instances per GPU (default 1)")
    triton.add_argument("--triton-max-batch-size", type=int, default=None, metavar="N",
                        help="max_batch_size (default: the largest batch the profiles serve; "
                        "0 disables batching)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.emit.triton import TritonOptions
    from trtops.errors import InputError
    from trtops.ops.emit import EngineFilter, emit
    from trtops.textsafe import terminal_safe

    if args.triton_version < 1 or args.triton_instances < 1:
        raise InputError("--triton-version and --triton-instances must be at least 1")
    if args.triton_max_batch_size is not None and args.triton_max_batch_size < 0:
        raise InputError("--triton-max-batch-size must be 0 or more")
    store = open_store(args.cache)
    options = TritonOptions(version=args.triton_version, instance_count=args.triton_instances,
                            max_batch_size=args.triton_max_batch_size)
    only = EngineFilter(args.model or (), args.precision or (), args.target or ())
    report, notes = emit(store, manifest_paths(args, only_existing=True), args.dest,
                         loaders=args.loaders, only=only, cache_url=args.cache,
                         engine_ref=args.engine_ref, triton=options,
                         include_unverified=args.include_unverified)
    if args.json:
        data = report.to_json()
        data["notes"] = notes
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for row in report.written:
            print(terminal_safe(f"{row['loader']:<7} {row['engine']} ({row['key'][:12]}) -> {row['path']}", limit=None))
        for note in notes:
            print(terminal_safe(f"note: {note}", limit=None), file=sys.stderr)
        for row in report.skipped:
            print(terminal_safe(f"skipped {row['engine']}: {row['reason']}", limit=None), file=sys.stderr)
        print(terminal_safe(report.summary(args.dest), limit=None), file=sys.stderr)
    return int(report.outcome.exit_code)
