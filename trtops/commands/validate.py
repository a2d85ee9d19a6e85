"""`trtops validate [PATH...]`: check manifests without building anything.

Fast enough for a pre-commit hook: reads YAML and ONNX graphs (never their weights), no
TensorRT, no network. Problems go to stderr as ``file:line:col: field: message (hint)``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check manifests: schema, references, paths, ONNX graphs vs profiles",
        description="Check manifest files (or directories of *.yaml/*.yml) and report every "
        "problem with its file:line:column. Exit 1 if there is any.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/)")
    parser.add_argument("--no-model-checks", action="store_true",
                        help="skip checks that read model and data files (ONNX graphs, "
                        "calibration/accuracy data); schema and references are still checked")
    from trtops.commands.args import add_cache_argument

    add_cache_argument(parser)  # url sources already downloaded there are checked too
    parser.set_defaults(handler=run)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def run(args: argparse.Namespace) -> int:
    from trtops.ops.validate import validate

    result = validate(manifest_paths(args), check_models=not args.no_model_checks,
                      cache=getattr(args, "cache", None))
    for valid in result.valid:
        print(f"ok: {valid.path} ({_plural(valid.models, 'model')}, {_plural(valid.engines, 'engine')})")
    for warning in result.warnings:
        print(f"warning: {warning.render()}", file=sys.stderr)
    if not result.errors:
        return 0
    for problem in result.errors:
        print(problem.render(), file=sys.stderr)
    print(f"{_plural(len(result.errors), 'problem')} in {_plural(result.bad_files, 'file')}",
          file=sys.stderr)
    return 1
