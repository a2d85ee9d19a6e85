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
from typing import NoReturn

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
    "repair",
    "status",
    "report",
    "info",
    "verify",
    "bench",
    "emit",
    "push",
    "pull",
    "lock",
    "gc",
    "cache",
)


class _Parser(argparse.ArgumentParser):
    """argparse with the exit codes of docs/exit-codes.md: a usage error is a user error
    (1), never argparse's 2, which ``plan --detailed-exitcode`` uses for "changes pending"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USER_ERROR), f"{self.prog}: error: {message}\n")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v`` and ``--version``, on the top parser and on every (sub)command, so that they
    may come before or after the command. Below the top, ``-v`` defaults to SUPPRESS: it
    must not reset a ``-v`` given before the command."""
    parser.add_argument("--version", action="version", version=f"trtops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=False if top else argparse.SUPPRESS,
                        help="show tracebacks and debug logs")


def _subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (commands and their subcommands, e.g. ``cache verify``)."""
    found = []
    for action in parser._actions:  # argparse offers no public way to walk subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.append(sub)
                found.extend(_subcommand_parsers(sub))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trtops",
        description="Declarative build/deploy orchestrator for TensorRT engines.",
    )
    _add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"trtops.commands.{name}").register(subparsers)
    for sub in _subcommand_parsers(parser):
        _add_global_options(sub, top=False)
    return parser


def _stdout_closed() -> int:
    """The reader of stdout went away (``trtops status | head -1``): end quietly with 0, as
    git does. Point stdout at /dev/null so that the interpreter's final flush of what is
    still buffered cannot fail again on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout has no file descriptor (tests capture it): nothing to flush later
    return int(ExitCode.OK)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, usage errors: argparse exits
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise SystemExit(_stdout_closed()) from None
        raise done
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return int(ExitCode.USER_ERROR)
    from trtops import console

    # Line-buffered streams, plain output in CI / pipes / TRTOPS_PLAIN, logging on stderr.
    console.setup(verbose=args.verbose)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter shutdown
        return code
    except BrokenPipeError:
        return _stdout_closed()
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


def entry() -> None:
    """The process entry point (the ``trtops`` script, ``python -m trtops``)."""
    from trtops.process_exit import finish

    raise SystemExit(finish(main()))


if __name__ == "__main__":  # pragma: no cover
    entry()
