"""``--junit FILE``: one test suite per command and one test case per engine
(``<model>/<precision>/<target>``, class name = manifest name), with ``file`` and ``line``
attributes that point at the model in the manifest."""

from __future__ import annotations

import json
import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from trtops.errors import InputError
from trtops.fsutil import atomic_write
from trtops.names import format_bytes
from trtops.outcome import STATUS_EXIT, RunResult
from trtops.report.common import (
    ERROR_STATUSES,
    FAILURE_STATUSES,
    SKIPPED_STATUSES,
    annotation_path,
    manifest_name,
    short_name,
    status_label,
    strip_ansi,
)

# Characters XML 1.0 cannot carry even escaped (TensorRT logs contain some).
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

MAX_DETAILS_CHARS = 64 * 1024


def _xml_text(text: str | None, limit: int | None = None) -> str:
    text = _XML_INVALID_RE.sub("", strip_ansi(text or ""))
    if limit is not None and len(text) > limit:
        # The end of a build log says why it failed: keep the tail.
        text = f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]
    return text



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
        if outcome.perf:
            out_lines.append("performance: " + _xml_text(json.dumps(outcome.perf, default=str)))
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
