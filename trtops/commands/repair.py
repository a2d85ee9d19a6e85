"""`trtops repair [PATH...] [--engine ID] [--max-builds N] [--write]`: for an engine that failed
its accuracy gate, find a small set of ONNX nodes to keep in fp32 that makes it pass, publish
that engine, and print (or write) the manifest patch adding ``keep_fp32`` to the model.

Exit codes: 0 repaired, 4 no repair within the build budget (what was tried is printed),
1 bad input (no such engine, the engine did not fail its gate), 5 no TensorRT or GPU.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trtops.commands.args import manifest_paths


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_cache_argument
    from trtops.ops.repair import DEFAULT_MAX_BUILDS

    parser = subparsers.add_parser(
        "repair",
        help="find ONNX nodes to keep in fp32 so that an engine passes its accuracy gate",
        description="For each engine that failed its accuracy gate (or the one --engine names): "
        "rank its ONNX nodes by where the reduced-precision values first diverge from ONNX "
        "Runtime, then search that order for a small keep_fp32 list that makes the gate pass. "
        "The passing engine is published as apply would publish it; the manifest patch adding "
        "keep_fp32 to the model is printed, and written with --write.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifest files or directories (default: manifests/)")
    add_cache_argument(parser)
    parser.add_argument("--engine", metavar="ID",
                        help="the engine to repair: manifest/model/precision/target (as `trtops plan` "
                        "lists it) or its key (default: every engine that failed its gate)")
    parser.add_argument("--max-builds", type=int, default=DEFAULT_MAX_BUILDS, metavar="N",
                        help=f"most TensorRT builds per engine, the probe build included (default: "
                        f"{DEFAULT_MAX_BUILDS})")
    parser.add_argument("--write", action="store_true",
                        help="write the keep_fp32 list into the manifest (default: print the patch)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trtops.commands.args import cache_url
    from trtops.ops.repair import RepairRequest, run_repair

    request = RepairRequest(paths=manifest_paths(args), cache_url=cache_url(args), engine=args.engine,
                            max_builds=args.max_builds, write=args.write)
    outcomes = run_repair(request, say=_to_stderr)
    return report_repairs(outcomes)


def report_repairs(outcomes: list[Any]) -> int:
    """Print each engine's result (patches on stdout); the exit code (0, or 4 when one
    engine found no repair)."""
    from trtops.errors import ExitCode
    from trtops.textsafe import terminal_safe

    code = ExitCode.OK
    for outcome in outcomes:
        print(terminal_safe(f"{outcome.id}: {outcome.message}", limit=None))
        if outcome.repaired:
            for field, values in outcome.lists.items():
                print(terminal_safe(f"  {field}: {', '.join(values)}", limit=None))
            print(f"  builds: {outcome.builds}, tries: {outcome.tries}, engine: {outcome.key}")
            if outcome.latency:
                print(f"  {outcome.latency}")
            if outcome.written:
                print(f"  written to {outcome.written}")
            if outcome.diff:
                sys.stdout.write(terminal_safe(outcome.diff, limit=None, keep_lines=True))
                if not outcome.diff.endswith("\n"):
                    print()
        else:
            code = ExitCode.ACCURACY_FAILED
    return int(code)


def _to_stderr(line: str) -> None:
    from trtops.textsafe import terminal_safe

    print(terminal_safe(line, limit=None), file=sys.stderr, flush=True)
