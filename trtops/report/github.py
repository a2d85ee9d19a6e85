"""GitHub Actions: the step summary (Markdown appended to ``$GITHUB_STEP_SUMMARY``) and
``::error file=...,line=...::`` annotations."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from trtops.names import format_bytes
from trtops.outcome import EngineOutcome, RunResult
from trtops.report.common import (
    STATUS_ICONS,
    annotation_path,
    format_seconds,
    manifest_name,
    short_name,
    status_label,
    strip_ansi,
    summary_line,
    tail_lines,
)

ANNOTATION_DETAIL_LINES = 20
MAX_SUMMARY_ROWS = 300


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
        message = strip_ansi(outcome.message or status_label(outcome.status))
        if outcome.details:
            message += "\n\n" + tail_lines(outcome.details, ANNOTATION_DETAIL_LINES)
        lines.append(workflow_command("error", properties, message))
    return lines


def _md_cell(text: Any) -> str:
    value = strip_ansi(str(text)).replace("\r", " ").replace("\n", " ")
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
                    tail_lines(outcome.details, 60).replace("```", "`\u200b``"),
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


def report_summary(page: Any, max_rows: int = MAX_SUMMARY_ROWS) -> str:
    """The HTML report's compact Markdown version for ``$GITHUB_STEP_SUMMARY``: the
    engines x targets matrix, then the latency of each measured engine.

    Args:
        page: a :class:`trtops.report.page.ReportPage`.
        max_rows: most matrix rows and latency lines (a summary is capped at 1 MiB).

    Returns:
        Markdown text ending with a newline.
    """
    from trtops.report.page import state_class
    from trtops.textsafe import terminal_safe

    def cell(text: Any) -> str:  # names from ONNX files and remote entries: bidi as escapes
        return _md_cell(terminal_safe(text))

    icons = {"ok": "✅", "fail": "❌", "error": "💥", "warn": "⚠️", "pending": "🕓", "skip": "⏭️",
             "other": "•"}
    targets = page.targets()
    counts = ", ".join(f"{count} {status_label(state)}" for state, count in page.counts())
    lines = [f"### {cell(page.title)}: {_md_cell(counts or 'no engines')}", ""]
    rows = page.matrix()
    if rows:
        lines += ["| engine | " + " | ".join(f"`{cell(t)}`" for t in targets) + " |",
                  "|---" * (len(targets) + 1) + "|"]
        for name, cells in rows[:max_rows]:
            shown = []
            for target in targets:
                engine = cells.get(target)
                shown.append("·" if engine is None else
                             f"{icons[state_class(engine.state)]} {cell(status_label(engine.state))}")
            lines.append(f"| `{cell(name)}` | " + " | ".join(shown) + " |")
        if len(rows) > max_rows:
            lines += ["", f"_{len(rows) - max_rows} more rows in the HTML report._"]
    measured = [e for e in page.engines if e.perf is not None and e.perf.cases]
    if measured:
        lines += ["", "#### Latency (median / p90 / p99 per case)", ""]
        for engine in measured[:max_rows]:
            outcome = engine.outcome
            parts = []
            for case in engine.perf.cases[:4]:
                lat = case.latency_ms
                numbers = " / ".join(_ms(lat.get(stat)) for stat in ("median", "p90", "p99"))
                rate = f", {case.throughput:,.0f}/s" if case.throughput is not None else ""
                parts.append(f"{cell(case.label)} {numbers} ms{rate}")
            delta = engine.perf.delta_percent()
            change = f" ({delta:+.1f}% vs previous)" if delta is not None else ""
            verdict = {True: "✅", False: "❌", None: "•"}[engine.perf.passed]
            failures = engine.perf.failures[:2]  # the gate's own messages
            why = f" — {cell('; '.join(failures))}" if failures else ""
            chosen = " ⭐ default loader" if (engine.selection or {}).get("chosen") is True else ""
            lines.append(f"- {verdict} `{cell(short_name(outcome))}`: "
                         f"{'; '.join(parts)}{change}{why}{chosen}")
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"
