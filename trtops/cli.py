"""Command-line entry point: parse, dispatch, render errors, map them to exit codes.

Each command lives in ``trtops/commands/<name>.py`` with ``register(subparsers)`` and
``run(args) -> int``. Command modules import nothing heavy at module level, so that
``import trtops.cli`` stays fast and never imports tensorrt.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from trtops import __version__
from trtops.errors import ExitCode, InternalError, TrtopsError
from trtops.redact import redact

# Order is the order of `trtops --help`.
COMMANDS = (
    "validate",
    "prepare",
    "schema",
    "plan",
    "apply",
    "status",
    "info",
    "verify",
    "emit",
    "push",
    "pull",
    "lock",
    "gc",
    "cache",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trtops",
        description="Declarative build/deploy orchestrator for TensorRT engines.",
    )
    parser.add_argument("--version", action="version", version=f"trtops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"trtops.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return int(ExitCode.USER_ERROR)
    from trtops import console

    # Line-buffered streams, plain output in CI / pipes / TRTOPS_PLAIN, logging on stderr.
    console.setup(verbose=args.verbose)
    try:
        return int(args.handler(args))
    except TrtopsError as exc:
        if args.verbose:
            _print_traceback()
        print(redact(exc.render()), file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (InternalError, Exception) as exc:  # noqa: BLE001 - the one place that maps bugs to 70
        if args.verbose or os.environ.get("TRTOPS_DEBUG"):
            _print_traceback()
        else:
            print(redact(f"internal error: {type(exc).__name__}: {exc} (run with -v for the "
                         "traceback; please report it)"), file=sys.stderr)
        return int(ExitCode.INTERNAL)


def _print_traceback() -> None:
    """The current exception's traceback on stderr, secrets redacted (a client library's
    message may quote an endpoint URL with credentials)."""
    print(redact(traceback.format_exc()), end="", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
