"""`trtops schema [-o FILE]`: the manifest JSON Schema, for editors.

Point yaml-language-server (VS Code YAML, Neovim, ...) at it with a first line
``# yaml-language-server: $schema=<path or URL of the file>`` in each manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the manifest JSON Schema (for editor completion and hover help)",
        description="Print the JSON Schema of manifests. Editors using yaml-language-server "
        "pick it up from a first line '# yaml-language-server: $schema=<file>'.",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.errors import InputError
    from trtops.ops.schema import manifest_json_schema

    text = json.dumps(manifest_json_schema(), indent=2, sort_keys=False) + "\n"
    if args.output and args.output != "-":
        path = Path(args.output)
        try:
            if path.parent != Path(""):
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {path}: {exc.strerror or exc}",
                             "choose a writable path for -o") from None
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
