"""Render a :class:`~trtops.outcome.RunResult` for people and machines.

* ``--json``: :func:`dump_json`, one document on stdout (logs stay on stderr).
* ``--junit FILE``: :func:`write_junit`, one test suite per command and one test case per
  engine (``<model>/<precision>/<target>``, class name = manifest name), with ``file`` and
  ``line`` attributes that point at the model in the manifest.
* GitHub Actions: :func:`github_step_summary` (Markdown appended to
  ``$GITHUB_STEP_SUMMARY``) and :func:`github_annotations` (``::error file=...,line=...::``
  workflow commands), both written by :func:`emit_ci_reports` when ``GITHUB_ACTIONS=true``.
* Terminals and plain logs: :func:`format_table` / :func:`print_result`.
* CI fan-out: :func:`matrix_from_plan` turns a plan document into the list of targets that
  have work pending, for a CI job matrix.

Nothing here imports anything heavy; rich is imported only to draw in a terminal.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from trtops.console import in_github_actions
from trtops.errors import InputError
from trtops.fsutil import atomic_write
from trtops.outcome import STATUS_EXIT, EngineOutcome, RunResult

# --------------------------------------------------------------------------- shared bits

STATUS_LABELS = {
    "built": "built",
    "reused": "reused",
    "downloaded": "downloaded",
    "pushed": "pushed",
    "pulled": "pulled",
    "verified": "verified",
    "skipped": "skipped",
    "pending": "pending",
    "build_failed": "build failed",
    "accuracy_failed": "accuracy failed",
    "rejected": "rejected (accuracy)",
    "environment": "environment missing",
    "invalid": "invalid input",
    "error": "internal error",
}

STATUS_ICONS = {
    "built": "✅", "reused": "✅", "downloaded": "✅", "pushed": "✅", "pulled": "✅",
    "verified": "✅", "skipped": "⏭️", "pending": "🕓", "build_failed": "❌",
    "accuracy_failed": "❌", "rejected": "❌", "invalid": "❌", "environment": "⚠️", "error": "💥",
}

# Statuses that are a JUnit <failure> (the engine failed, or its inputs such as calibration
# data are invalid: the user has something to fix) vs. an <error> (it could not be tested:
# missing TensorRT/GPU, a bug in trtops).
FAILURE_STATUSES = frozenset({"build_failed", "accuracy_failed", "rejected", "invalid"})
ERROR_STATUSES = frozenset({"environment", "error"})
# `pending` only appears in plans: nothing was built or checked, which JUnit calls skipped.
SKIPPED_STATUSES = frozenset({"skipped", "pending"})

# Planner action kinds that need a GPU runner (for `plan --matrix`).
PENDING_KINDS = frozenset({"build", "rebuild"})

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Characters XML 1.0 cannot carry even escaped (TensorRT logs contain some).
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

MAX_DETAILS_CHARS = 64 * 1024
ANNOTATION_DETAIL_LINES = 20
MAX_SUMMARY_ROWS = 300


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " "))


def short_name(outcome: EngineOutcome) -> str:
    """``model/precision/target`` (the engine id without its manifest name)."""
    return f"{outcome.model}/{outcome.precision}/{outcome.target}"


def manifest_name(outcome: EngineOutcome) -> str:
    """The manifest name of an engine id (``manifest/model/precision/target``)."""
    parts = outcome.id.split("/")
    if len(parts) >= 4:
        return "/".join(parts[:-3])
    return Path(outcome.manifest).stem if outcome.manifest else ""


def _strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def _xml_text(text: str | None, limit: int | None = None) -> str:
    text = _XML_INVALID_RE.sub("", _strip_ansi(text or ""))
    if limit is not None and len(text) > limit:
        # The end of a build log says why it failed: keep the tail.
        text = f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]
    return text


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_bytes(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - loop always returns


def summary_line(result: RunResult, exit_code: int | None = None) -> str:
    """``apply: 2 built, 1 reused, 1 build failed (exit 3, 12.3s)``.

    ``exit_code`` overrides ``result.exit_code()`` (``plan --detailed-exitcode`` exits 2,
    which no RunResult says).
    """
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    order = list(STATUS_LABELS)
    parts = [
        f"{count} {status_label(status)}"
        for status, count in sorted(counts.items(),
                                    key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    ]
    body = ", ".join(parts) if parts else "no engines"
    code = int(result.exit_code()) if exit_code is None else int(exit_code)
    return f"{result.command}: {body} (exit {code}, {format_seconds(result.seconds) or '0.0s'})"


# --------------------------------------------------------------------------- JSON


def dump_json(document: RunResult | Mapping[str, Any] | Sequence[Any],
              stream: IO[str] | None = None) -> None:
    """Write one JSON document and a newline to ``stream`` (default stdout), then flush.

    Args:
        document: a RunResult (its ``to_json()``) or any JSON-ready value.
        stream: where to write.
    """
    data = document.to_json() if isinstance(document, RunResult) else document
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(data, indent=2, default=str) + "\n")
    stream.flush()


# --------------------------------------------------------------------------- JUnit


def _testsuite(result: RunResult, hostname: str, timestamp: str,
               relative_to: str | None) -> ET.Element:
    suite = ET.Element("testsuite")
    failures = errors = skipped = 0
    for outcome in result.outcomes:
        case = ET.SubElement(suite, "testcase", {
            "name": short_name(outcome),
            "classname": manifest_name(outcome),
            "time": f"{outcome.seconds or 0.0:.3f}",
        })
        if outcome.manifest:
            case.set("file", annotation_path(outcome.manifest, relative_to))
        if outcome.line is not None:
            case.set("line", str(outcome.line))
        message = _xml_text(outcome.message)
        details = _xml_text(outcome.details, MAX_DETAILS_CHARS)
        if outcome.status in FAILURE_STATUSES:
            failures += 1
            element = ET.SubElement(case, "failure", {
                "message": message or status_label(outcome.status), "type": outcome.status})
            element.text = details or message
        elif outcome.status in ERROR_STATUSES or outcome.status not in STATUS_EXIT:
            errors += 1
            element = ET.SubElement(case, "error", {
                "message": message or status_label(outcome.status), "type": outcome.status})
            element.text = details or message
        elif outcome.status in SKIPPED_STATUSES:
            skipped += 1
            text = message or status_label(outcome.status)
            if outcome.status == "pending":
                text = f"pending: {text}" if message else "pending"
            ET.SubElement(case, "skipped", {"message": text})
        # What happened, for every engine: test reporters show system-out next to the case.
        out_lines = [f"status: {outcome.status}", f"action: {outcome.action}"]
        if outcome.key:
            out_lines.append(f"key: {outcome.key}")
        if outcome.engine_bytes is not None:
            out_lines.append(f"engine size: {format_bytes(outcome.engine_bytes)}")
        if message:
            out_lines.append(f"message: {message}")
        if outcome.accuracy:
            out_lines.append("accuracy: " + _xml_text(json.dumps(outcome.accuracy, default=str)))
        if details and outcome.status not in FAILURE_STATUSES | ERROR_STATUSES:
            out_lines.append(details)
        ET.SubElement(case, "system-out").text = "\n".join(out_lines)
    suite.attrib.update({
        "name": f"trtops {result.command}",
        "tests": str(len(result.outcomes)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{result.seconds:.3f}",
        "timestamp": timestamp,
        "hostname": hostname,
    })
    return suite


def junit_xml(results: RunResult | Sequence[RunResult], *,
              relative_to: str | None = None) -> bytes:
    """The JUnit XML document (UTF-8 bytes) for one or more command results.

    Args:
        results: one RunResult, or several (one ``<testsuite>`` each).
        relative_to: directory that ``file`` attributes are relative to (default:
            ``$GITHUB_WORKSPACE`` or the current directory).

    Returns:
        ``<testsuites>`` with totals and one ``<testsuite>`` per result.
    """
    items = [results] if isinstance(results, RunResult) else list(results)
    root = ET.Element("testsuites", {"name": "trtops"})
    hostname = socket.gethostname()
    timestamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for result in items:
        suite = _testsuite(result, hostname, timestamp, relative_to)
        root.append(suite)
        for name in totals:
            totals[name] += int(suite.get(name, "0"))
        seconds += result.seconds
    root.attrib.update({name: str(value) for name, value in totals.items()})
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(results: RunResult | Sequence[RunResult], path: str | os.PathLike[str], *,
                relative_to: str | None = None) -> Path:
    """Write the JUnit XML report to ``path`` atomically (parent folders created).

    Args:
        results: one RunResult (one test suite) or several.
        path: the report file.
        relative_to: see :func:`junit_xml`.

    Returns:
        The path written.

    Raises:
        InputError: the file cannot be written.
    """
    target = Path(path)
    data = junit_xml(results, relative_to=relative_to)
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise InputError(f"cannot write the JUnit report {target}: {exc.strerror or exc}",
                         hint="pass --junit a path in a writable folder") from exc
    return target


# --------------------------------------------------------------------------- GitHub Actions


def annotation_path(manifest: str, relative_to: str | None = None,
                    environ: Mapping[str, str] | None = None) -> str:
    """The manifest path as GitHub wants it: relative to the repository checkout.

    Args:
        manifest: the manifest path as the user gave it (relative to the current folder).
        relative_to: base folder; default ``$GITHUB_WORKSPACE``, else the current folder.
        environ: environment variables (default ``os.environ``).

    Returns:
        A forward-slash relative path, or the absolute path when the manifest lies
        outside the base folder.
    """
    env = os.environ if environ is None else environ
    base = relative_to or env.get("GITHUB_WORKSPACE") or os.getcwd()
    absolute = os.path.abspath(manifest)
    try:
        relative = os.path.relpath(absolute, os.path.abspath(base))
    except ValueError:  # another drive on Windows
        return Path(absolute).as_posix()
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return Path(absolute).as_posix()
    return Path(relative).as_posix()


def escape_data(text: str) -> str:
    """Escape the message of a workflow command (what follows the second ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value of a workflow command (``file=``, ``title=``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, properties: Mapping[str, Any], message: str) -> str:
    """``::command key=value,key=value::message`` with GitHub's escaping."""
    props = ",".join(f"{key}={escape_property(str(value))}"
                     for key, value in properties.items() if value is not None and value != "")
    head = f"::{command} {props}" if props else f"::{command}"
    return f"{head}::{escape_data(message)}"


def _tail(text: str, lines: int) -> str:
    rows = _strip_ansi(text).rstrip().splitlines()
    if len(rows) > lines:
        rows = [f"[... {len(rows) - lines} lines above ...]"] + rows[-lines:]
    return "\n".join(rows)


def github_annotations(result: RunResult, *, relative_to: str | None = None,
                       environ: Mapping[str, str] | None = None) -> list[str]:
    """``::error`` workflow commands for every failed engine, pointing at its model's line.

    Args:
        result: the command's result.
        relative_to: base folder of annotation paths (default ``$GITHUB_WORKSPACE`` or the
            current folder).
        environ: environment variables (default ``os.environ``).

    Returns:
        One line per failed engine (no trailing newline), in result order.
    """
    lines: list[str] = []
    for outcome in result.outcomes:
        if not outcome.failed:
            continue
        properties: dict[str, Any] = {}
        if outcome.manifest:
            properties["file"] = annotation_path(outcome.manifest, relative_to, environ)
        if outcome.line is not None:
            properties["line"] = outcome.line
        properties["title"] = (
            f"trtops {result.command}: {short_name(outcome)} {status_label(outcome.status)}")
        message = _strip_ansi(outcome.message or status_label(outcome.status))
        if outcome.details:
            message += "\n\n" + _tail(outcome.details, ANNOTATION_DETAIL_LINES)
        lines.append(workflow_command("error", properties, message))
    return lines


def _md_cell(text: Any) -> str:
    value = _strip_ansi(str(text)).replace("\r", " ").replace("\n", " ")
    return value.replace("|", "\\|").strip()


def _format_number(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


_NAME_KEYS = ("name", "output", "tensor")


def _accuracy_entries(accuracy: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(output name, metrics) pairs from an accuracy summary, worst first.

    ``accuracy.json`` (trtops.gate.report) has ``worst``: a list of output results with
    ``name``, ``label`` (the input set) and statistics, worst first. A dict keyed by
    output name (``worst`` or ``outputs``) is accepted too.
    """
    for key in ("worst", "outputs"):
        value = accuracy.get(key)
        if isinstance(value, Mapping):
            return [(str(name), dict(metrics)) for name, metrics in value.items()
                    if isinstance(metrics, Mapping)]
        if isinstance(value, list):
            entries = []
            for item in value:
                if isinstance(item, Mapping):
                    name = next((str(item[k]) for k in _NAME_KEYS if k in item), "?")
                    entries.append((name, {k: v for k, v in item.items() if k not in _NAME_KEYS}))
            return entries
    return []


def _describe_output(name: str, metrics: Mapping[str, Any]) -> str:
    """The verifier's own one-line description when the entry is an accuracy.json output
    result, else ``key value`` pairs of its scalars."""
    if {"stat", "atol", "rtol", "passed"} <= set(metrics):
        try:
            from trtops.gate.compare import OutputResult

            return OutputResult.from_json({"name": name, **metrics}).describe()
        except Exception:  # noqa: BLE001 - an odd entry must not break a report
            pass
    skip = {"label", "profile", "shape", "passed"}
    return ", ".join(f"{key} {_format_number(value)}" for key, value in metrics.items()
                     if key not in skip and (value is None or isinstance(value, (int, float, str, bool))))


def accuracy_line(outcome: EngineOutcome) -> str | None:
    """One Markdown line with the worst output of an engine's accuracy check, or None."""
    accuracy = outcome.accuracy
    if not accuracy:
        return None
    passed = accuracy.get("passed")
    if accuracy.get("skipped"):
        return f"- ⏭️ `{short_name(outcome)}` accuracy check disabled"
    icon = "✅" if passed is True else "❌" if passed is False else "•"
    entries = _accuracy_entries(accuracy)
    if entries:
        name, metrics = entries[0]
        where = f" @ {_md_cell(metrics['label'])}" if metrics.get("label") else ""
        described = _describe_output(name, metrics)
        detail = f"`{_md_cell(name)}`{where}" + (
            f": {_md_cell(described)}" if described else "")
    else:
        scalars = ", ".join(f"{key} {_format_number(value)}" for key, value in accuracy.items()
                            if key != "passed" and isinstance(value, (int, float, str, bool)))
        detail = _md_cell(scalars) if scalars else ("passed" if passed else "no details")
    return f"- {icon} `{short_name(outcome)}` {detail}"


def github_step_summary(result: RunResult, exit_code: int | None = None) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: headline, one table row per engine, failures
    first when the table is cut, and the worst accuracy line of each checked engine.

    Args:
        result: the command's result.
        exit_code: the command's exit code, when not ``result.exit_code()``.

    Returns:
        Markdown text ending with a newline.
    """
    code = int(result.exit_code()) if exit_code is None else int(exit_code)
    icon = {0: "✅", 2: "🕓"}.get(code, "❌")
    lines = [f"### {icon} {_md_cell(summary_line(result, code))}", ""]
    outcomes = list(result.outcomes)
    if outcomes:
        shown = outcomes
        if len(outcomes) > MAX_SUMMARY_ROWS:
            # A summary is capped by GitHub (1 MiB): keep every failure, then the rest.
            failed = [o for o in outcomes if o.failed]
            others = [o for o in outcomes if not o.failed]
            shown = (failed + others)[:max(MAX_SUMMARY_ROWS, len(failed))]
        lines += [
            "| Engine | Manifest | Action | Status | Time | Size | Details |",
            "|---|---|---|---|---|---|---|",
        ]
        for outcome in shown:
            where = manifest_name(outcome)
            if outcome.line is not None:
                where += f":{outcome.line}"
            lines.append("| " + " | ".join([
                f"`{_md_cell(short_name(outcome))}`",
                _md_cell(where),
                _md_cell(outcome.action),
                f"{STATUS_ICONS.get(outcome.status, '')} {_md_cell(status_label(outcome.status))}".strip(),
                format_seconds(outcome.seconds),
                format_bytes(outcome.engine_bytes),
                _md_cell(outcome.message),
            ]) + " |")
        if len(shown) < len(outcomes):
            lines += ["", f"_{len(outcomes) - len(shown)} more engines not shown; see the "
                          "JUnit or --json report._"]
        accuracy = [(o, accuracy_line(o)) for o in outcomes]
        accuracy = [(o, line) for o, line in accuracy if line]
        if accuracy:
            # Failures first: they are what the reader scrolls for.
            accuracy.sort(key=lambda pair: (pair[0].accuracy or {}).get("passed") is not False)
            lines += ["", "#### Accuracy (worst output per engine)", ""]
            lines += [line for _, line in accuracy[:MAX_SUMMARY_ROWS]]
        failures = [o for o in outcomes if o.failed and o.details]
        if failures:
            lines += ["", "#### Failures", ""]
            for outcome in failures[:20]:
                lines += [
                    f"<details><summary><code>{_md_cell(short_name(outcome))}</code>: "
                    f"{_md_cell(status_label(outcome.status))}</summary>",
                    "",
                    "```",
                    _tail(outcome.details, 60).replace("```", "`\u200b``"),
                    "```",
                    "</details>",
                ]
    else:
        lines.append("No engines.")
    return "\n".join(lines) + "\n"


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> bool:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``; False when the variable is unset."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return True


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


# --------------------------------------------------------------------------- terminal


_COLUMNS = ("ENGINE", "ACTION", "STATUS", "TIME", "SIZE", "DETAILS")


def _rows(result: RunResult) -> list[tuple[str, ...]]:
    return [(o.id, o.action, status_label(o.status), format_seconds(o.seconds),
             format_bytes(o.engine_bytes), _strip_ansi(o.message).replace("\n", " "))
            for o in result.outcomes]


def format_table(result: RunResult) -> str:
    """A plain-text table (no ANSI, no wrapping) and the summary line."""
    rows = _rows(result)
    lines: list[str] = []
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_COLUMNS)]
        def fmt(cells: Sequence[str]) -> str:
            # The last column is free text: no padding, so no trailing blanks.
            padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1])] + [cells[-1]]
            return "  ".join(padded).rstrip()
        lines.append(fmt(_COLUMNS))
        lines += [fmt(r) for r in rows]
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


def print_result(result: RunResult, console: Any = None) -> None:
    """Show the result on stdout: a rich table in a terminal, :func:`format_table` elsewhere.

    Args:
        result: the command's result.
        console: a rich Console (default: :func:`trtops.console.out`).
    """
    from trtops import console as consoles

    target = console or consoles.out()
    if not target.is_terminal:
        target.file.write(format_table(result))
        target.file.flush()
        return
    from rich.table import Table

    styles = {"built": "green", "reused": "green", "downloaded": "green", "pushed": "green",
              "pulled": "green", "verified": "green", "skipped": "dim", "pending": "yellow"}
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in _COLUMNS:
        table.add_column(column.lower(), overflow="fold", no_wrap=column != "DETAILS")
    for outcome, row in zip(result.outcomes, _rows(result)):
        style = styles.get(outcome.status, "red")
        table.add_row(row[0], row[1], f"[{style}]{row[2]}[/]", *row[3:])
    if result.outcomes:
        target.print(table)
    target.print(summary_line(result), markup=False, highlight=False)


# --------------------------------------------------------------------------- CLI glue


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


# --------------------------------------------------------------------------- plans

# Planner action kind -> RunResult status, for reports of `trtops plan`.
PLAN_STATUS = {"build": "pending", "rebuild": "pending", "reuse": "reused", "skip": "skipped",
               "rejected": "rejected"}


def result_from_plan(plan_json: Mapping[str, Any], seconds: float = 0.0) -> RunResult:
    """A plan document (``Plan.to_json()``) as a RunResult, so that plans get the same
    step summary, annotations and JUnit as apply: build/rebuild are ``pending``, reuse is
    ``reused``, skip is ``skipped`` and rejected stays ``rejected`` (an engine that failed
    its accuracy check before and is not retried: an error worth annotating in a PR).

    Args:
        plan_json: the plan document.
        seconds: how long planning took.

    Returns:
        One outcome per action, in plan order.
    """
    outcomes = []
    for action in plan_json.get("actions") or []:
        spec = action.get("spec") or {}
        target = spec.get("target")
        target_name = target.get("name") if isinstance(target, Mapping) else target
        kind = str(action.get("kind", ""))
        outcomes.append(EngineOutcome(
            id=str(action.get("id") or ""),
            manifest=str(spec.get("manifest") or ""),
            line=spec.get("line"),
            model=str(spec.get("model") or ""),
            precision=str(spec.get("precision") or ""),
            target=str(target_name or ""),
            action=kind,
            status=PLAN_STATUS.get(kind, "error"),
            key=action.get("key"),
            message=str(action.get("reason") or ""),
        ))
    return RunResult("plan", outcomes, seconds)


# --------------------------------------------------------------------------- CI matrix


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _action_target(action: Mapping[str, Any]) -> str | None:
    """Target name of a plan action, whatever the nesting."""
    for path in (("spec", "target"), ("target",)):
        value = _get(action, *path)
        if isinstance(value, Mapping) and value.get("name"):
            return str(value["name"])
        if isinstance(value, str) and value:
            return value
    engine_id = action.get("id") or _get(action, "spec", "id")
    if isinstance(engine_id, str) and engine_id.count("/") >= 3:
        return engine_id.rsplit("/", 1)[1]
    return None


def _action_kind(action: Mapping[str, Any]) -> str:
    return str(action.get("kind") or action.get("action") or "")


def matrix_from_plan(plan_json: Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    """Targets with pending work (build or rebuild), for a CI job matrix.

    Args:
        plan_json: a plan document (``{"actions": [...]}``), a RunResult document
            (``{"engines": [...]}``) or a bare list of actions; each action names its kind
            (``kind`` or ``action``) and its target (``spec.target.name``, ``target`` or the
            last part of ``id``).

    Returns:
        One dict per target name in first-seen order: ``target`` (for ``apply --target``),
        ``engines`` (how many engines to build) and ``manifests`` (names of the manifests
        that have them; a target name may be declared in several manifests). Empty when
        nothing needs building.
    """
    if isinstance(plan_json, Mapping):
        actions = plan_json.get("actions")
        if actions is None:
            actions = plan_json.get("engines", [])
    else:
        actions = plan_json
    matrix: dict[str, dict[str, Any]] = {}
    for action in actions or []:
        if not isinstance(action, Mapping) or _action_kind(action) not in PENDING_KINDS:
            continue
        name = _action_target(action)
        if name is None:
            continue
        entry = matrix.setdefault(name, {"target": name, "engines": 0, "manifests": []})
        entry["engines"] += 1
        manifest = _get(action, "spec", "manifest_name") or action.get("manifest_name")
        engine_id = action.get("id")
        if not manifest and isinstance(engine_id, str) and engine_id.count("/") >= 3:
            manifest = engine_id.rsplit("/", 3)[0]
        if manifest and manifest not in entry["manifests"]:
            entry["manifests"].append(manifest)
    return list(matrix.values())
