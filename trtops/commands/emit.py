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
    from trtops.emit.python_loader import ENGINE_REFS

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
                        help="comma-separated loaders: python, triton (default: each "
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


def _selected(spec_id: str, args: argparse.Namespace) -> bool:
    parts = spec_id.split("/")
    if len(parts) != 4:
        return False
    _, model, precision, target = parts
    return ((not args.model or model in args.model)
            and (not args.precision or precision in args.precision)
            and (not args.target or target in args.target))


def collect_items(args: argparse.Namespace, store: Any) -> tuple[list[Any], list[str]]:
    """Engines to emit and notes about engines left out, from manifests or refs."""
    from trtops.cache import is_remote
    from trtops.emit.emitter import EmitItem, parse_loaders

    override = parse_loaders(args.loaders) if args.loaders else None
    notes: list[str] = []
    items: list[EmitItem] = []
    paths = manifest_paths(args, only_existing=True)
    if paths:
        from trtops.plan import load_specs

        cache = args.cache
        cache_dir = None if cache and is_remote(cache) else getattr(store, "root", None)
        for spec in load_specs(paths, check_models=False, cache_dir=cache_dir):
            if not _selected(spec.id, args):
                continue
            loaders = override or tuple(spec.loaders)
            if not loaders:
                notes.append(f"{spec.id}: no loaders: in its manifest (pass --loaders)")
                continue
            record = store.read_ref(spec.id)
            key = record.get("key") if isinstance(record, dict) else None
            items.append(EmitItem(spec.id, key or "", loaders))
    else:
        for spec_id, record in sorted(store.list_refs()):
            if _selected(spec_id, args) and isinstance(record, dict):
                items.append(EmitItem(spec_id, str(record.get("key") or ""),
                                      override or ("python",)))
    return items, notes


def run(args: argparse.Namespace) -> int:
    from trtops.cache import open_store
    from trtops.emit.emitter import emit_entries
    from trtops.emit.triton import TritonOptions
    from trtops.errors import InputError

    if args.triton_version < 1 or args.triton_instances < 1:
        raise InputError("--triton-version and --triton-instances must be at least 1")
    if args.triton_max_batch_size is not None and args.triton_max_batch_size < 0:
        raise InputError("--triton-max-batch-size must be 0 or more")
    store = open_store(args.cache)
    items, notes = collect_items(args, store)
    if not items:
        raise InputError(
            f"no engines to emit from {store.url}" + (": " + "; ".join(notes) if notes else ""),
            hint="build them with `trtops apply` (or `trtops pull`), and check the filters")
    options = TritonOptions(version=args.triton_version, instance_count=args.triton_instances,
                            max_batch_size=args.triton_max_batch_size)
    report = emit_entries(store, items, args.dest, engine_ref=args.engine_ref,
                          triton=options, include_unverified=args.include_unverified)
    if args.json:
        data = report.to_json()
        data["notes"] = notes
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for row in report.written:
            print(f"{row['loader']:<7} {row['engine']} ({row['key'][:12]}) -> {row['path']}")
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        for row in report.skipped:
            print(f"skipped {row['engine']}: {row['reason']}", file=sys.stderr)
    return int(report.outcome.exit_code)
