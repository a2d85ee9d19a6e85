"""What every report format shares: status labels, engine names, durations, the summary line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from trtops.errors import ExitCode
from trtops.names import try_parse_engine_id
from trtops.outcome import STATUS_EXIT, EngineOutcome, RunResult

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
    "perf_failed": "performance failed",
    "benched": "measured",
    "environment": "environment missing",
    "invalid": "invalid input",
    "error": "internal error",
}

STATUS_ICONS = {
    "built": "✅", "reused": "✅", "downloaded": "✅", "pushed": "✅", "pulled": "✅",
    "verified": "✅", "skipped": "⏭️", "pending": "🕓", "build_failed": "❌",
    "accuracy_failed": "❌", "rejected": "❌", "perf_failed": "🐢", "benched": "✅", "invalid": "❌", "environment": "⚠️", "error": "💥",
}

# Statuses that are a JUnit <failure> (the engine failed, or its inputs such as calibration
# data are invalid: the user has something to fix) vs. an <error> (it could not be tested:
# missing TensorRT/GPU, a bug in trtops).
FAILURE_STATUSES = frozenset(status for status, code in STATUS_EXIT.items()
                             if code in (ExitCode.USER_ERROR, ExitCode.BUILD_FAILED,
                                         ExitCode.ACCURACY_FAILED, ExitCode.PERFORMANCE_FAILED))
ERROR_STATUSES = frozenset(status for status, code in STATUS_EXIT.items()
                           if code in (ExitCode.ENVIRONMENT, ExitCode.INTERNAL))
# `pending` only appears in plans: nothing was built or checked, which JUnit calls skipped.
SKIPPED_STATUSES = frozenset({"skipped", "pending"})

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def status_label(status: str) -> str:
    """How people read an outcome status (``build_failed`` -> ``build failed``)."""
    return STATUS_LABELS.get(status, status.replace("_", " "))


def short_name(outcome: EngineOutcome) -> str:
    """``model/precision/target`` (the engine id without its manifest name)."""
    return f"{outcome.model}/{outcome.precision}/{outcome.target}"


def manifest_name(outcome: EngineOutcome) -> str:
    """The manifest name of an engine id (``manifest/model/precision/target``)."""
    engine_id = try_parse_engine_id(outcome.id)
    if engine_id is not None:
        return engine_id.manifest
    return Path(outcome.manifest).stem if outcome.manifest else ""



def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colors, cursor moves)."""
    return _ANSI_RE.sub("", text)



def format_seconds(seconds: float | None) -> str:
    """``12.3s``, ``4m05s``, ``1h02m``; None prints nothing."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"



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



def tail_lines(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text`` (escapes removed), saying how many were cut."""
    rows = strip_ansi(text).rstrip().splitlines()
    if len(rows) > lines:
        rows = [f"[... {len(rows) - lines} lines above ...]"] + rows[-lines:]
    return "\n".join(rows)
