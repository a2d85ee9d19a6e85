"""Terminals and plain logs: the result as a table and a summary line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trtops.names import format_bytes
from trtops.outcome import RunResult
from trtops.report.common import format_seconds, status_label, strip_ansi, summary_line

_COLUMNS = ("ENGINE", "ACTION", "STATUS", "TIME", "SIZE", "DETAILS")


def _rows(result: RunResult) -> list[tuple[str, ...]]:
    return [(o.id, o.action, status_label(o.status), format_seconds(o.seconds),
             format_bytes(o.engine_bytes), strip_ansi(o.message).replace("\n", " "))
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
