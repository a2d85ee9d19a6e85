"""What a command writes after its work: the table or ``--json``, and every CI report that
applies (JUnit, step summary, annotations)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from trtops.console import in_github_actions
from trtops.errors import InputError
from trtops.outcome import RunResult
from trtops.report.github import (
    append_step_summary,
    github_annotations,
    github_step_summary,
)
from trtops.report.json_doc import dump_json
from trtops.report.junit import write_junit
from trtops.report.table import print_result


def emit_ci_reports(result: RunResult, junit_path: str | os.PathLike[str] | None = None, *,
                    exit_code: int | None = None,
                    environ: Mapping[str, str] | None = None,
                    stream: IO[str] | None = None) -> None:
    """Write every CI report that applies: the JUnit file when asked, and inside GitHub
    Actions the step summary and ``::error`` annotations.

    Annotations go to stderr (``stream``): the runner reads workflow commands from both
    streams and stdout may carry a ``--json`` document.

    Args:
        result: the command's result.
        junit_path: ``--junit`` value, or None.
        exit_code: the command's exit code, when not ``result.exit_code()``.
        environ: environment variables (default ``os.environ``).
        stream: where annotations go (default ``sys.stderr``).
    """
    env = os.environ if environ is None else environ
    if junit_path:
        write_junit(result, junit_path, relative_to=env.get("GITHUB_WORKSPACE") or None)
    if not in_github_actions(env):
        return
    try:
        append_step_summary(github_step_summary(result, exit_code), env)
    except OSError as exc:  # a summary is a nicety; never fail a build for it
        print(f"warning: cannot append to GITHUB_STEP_SUMMARY: {exc}", file=sys.stderr)
    out = sys.stderr if stream is None else stream
    for line in github_annotations(result, environ=env):
        out.write(line + "\n")
    out.flush()



def check_report_path(path: str | os.PathLike[str] | None, option: str = "--junit") -> None:
    """Fail before any work when a report file could not be written at the end.

    Args:
        path: the report file, or None (nothing to check).
        option: the option name, for the message.

    Raises:
        InputError: the path is a folder, or its folder cannot be created or written.
    """
    if not path:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} {path} is a folder",
                         hint=f"give a file name, e.g. {option} reports/junit.xml")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder of {option} {path}: {exc.strerror or exc}",
                         hint=f"pass {option} a path in a writable folder") from exc
    if not os.access(target.parent, os.W_OK):
        raise InputError(f"cannot write {option} {path}: its folder is not writable",
                         hint=f"pass {option} a path in a writable folder")


def report_refusal(error: Exception, args: Any) -> None:
    """A run refused before any work (``apply``/``verify`` without TensorRT): the CLI prints
    its one error; the reports scripts and CI read (``--json``, ``--junit``, the step
    summary) still get one entry per engine, from the error's ``result`` when it has one."""
    result = getattr(error, "result", None)
    if not isinstance(result, RunResult):
        return
    if getattr(args, "json", False):
        dump_json(result)
    emit_ci_reports(result, getattr(args, "junit", None))


def render_result(result: RunResult, args: Any) -> int:
    """Output a command's result as its flags ask and return its exit code.

    ``--json`` prints the document, otherwise the table; then :func:`emit_ci_reports`.

    Args:
        result: the command's result.
        args: parsed arguments (``json`` and ``junit`` attributes are optional).

    Returns:
        ``int(result.exit_code())``.
    """
    if getattr(args, "json", False):
        dump_json(result)
    else:
        print_result(result)
    emit_ci_reports(result, getattr(args, "junit", None))
    return int(result.exit_code())
