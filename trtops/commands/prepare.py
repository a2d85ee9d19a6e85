"""`trtops prepare [PATH...]`: write the prepared models (what TensorRT will parse) and
what preparation changed (nodes folded, dims renamed, constants bound, If nodes inlined,
and on TensorRT 11 the fp16/bf16 cast: initializers converted, Cast nodes inserted)."""

from __future__ import annotations

import argparse
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="write the prepared ONNX models (prepare: options) and what changed",
        description="Run the model-preparation stage of every model with prepare: options, and "
        "the fp16/bf16 cast of strongly typed builds (every one on TensorRT 11) for the "
        "platform's TensorRT, and print where the prepared model is and what changed. By "
        "default the models go into the cache's prepared/ directory, where apply finds them.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write DIR/<manifest>/<model>/model.onnx and report.json instead")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="prepare only this model (repeatable)")
    from trtops.commands.args import add_cache_argument, add_platform_arguments

    add_cache_argument(parser)
    add_platform_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.keys.platform import platform_from_args
    from trtops.ops.prepare import prepare_manifests
    from trtops.ops.validate import local_cache_dir

    cache_root = local_cache_dir(getattr(args, "cache", None)) or "cache"
    result = prepare_manifests(manifest_paths(args), cache_root=cache_root, out=args.out, only=args.model,
                               platform=platform_from_args(args))
    for item in result.models:
        name = item.name
        if item.path is None:
            print(f"{name}: skipped: {item.skipped}")
            continue
        print(f"{name}: {item.path}")
        for line in item.report.lines() if item.report is not None else []:
            print(f"  {line}")
    return 0
