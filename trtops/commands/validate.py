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


def run(args: argparse.Namespace) -> int:
    from trtops.manifest.expand import expand
    from trtops.manifest.collect import collect

    paths = manifest_paths(args)
    from trtops.cache import default_cache_url, is_remote

    cache = getattr(args, "cache", None) or default_cache_url()
    # Url sources are only checked when downloaded into a local cache: never the network.
    cache_dir = None if is_remote(cache) else cache.removeprefix("file://")
    loaded, problems, files = collect(paths, check_models=not args.no_model_checks,
                                      cache_dir=cache_dir)
    by_file = {str(m.path): m for m in loaded}
    for file in files:
        manifest = by_file.get(str(file))
        if manifest is None:
            continue
        engines = len(expand([manifest], cache_dir=cache_dir))
        models = len(manifest.manifest.models)
        print(f"ok: {file} ({models} model{'s' if models != 1 else ''}, "
              f"{engines} engine{'s' if engines != 1 else ''})")
    if not problems:
        return 0
    for problem in problems:
        print(problem.render(), file=sys.stderr)
    bad_files = len({p.location.file for p in problems})
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {bad_files} "
          f"file{'s' if bad_files != 1 else ''}", file=sys.stderr)
    return 1
