"""Terminals and plain logs: the result as a table and a summary line.

One line per engine: plain text is never wrapped (logs stay greppable); a terminal's table
elides cells (DETAILS first, then ENGINE) to fit its width. Every cell is made
:func:`~trtops.textsafe.terminal_safe`: names and messages come from models and remotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trtops.names import format_bytes
from trtops.outcome import RunResult
from trtops.report.common import format_seconds, status_label, strip_ansi, summary_line
from trtops.textsafe import terminal_safe

_COLUMNS = ("ENGINE", "ACTION", "STATUS", "TIME", "SIZE", "DETAILS")
_MIN_WIDTHS = {"ENGINE": 12, "DETAILS": 10}


def _rows(result: RunResult) -> list[tuple[str, ...]]:
    rows = [(o.id, o.action, status_label(o.status), format_seconds(o.seconds),
             format_bytes(o.engine_bytes), strip_ansi(o.message).replace("\n", " "))
            for o in result.outcomes]
    return [tuple(terminal_safe(cell, limit=None) for cell in row) for row in rows]


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
    from rich.text import Text

    styles = {"built": "green", "reused": "green", "downloaded": "green", "pushed": "green",
              "pulled": "green", "verified": "green", "skipped": "dim", "pending": "yellow"}
    rows = _rows(result)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column, width in zip(_COLUMNS, _fit_widths(rows, target.width)):
        table.add_column(column.lower(), no_wrap=True, overflow="ellipsis", width=width)
    for outcome, row in zip(result.outcomes, rows):
        style = styles.get(outcome.status, "red")
        # Text, not markup: a model named '[red]x' stays what it is.
        table.add_row(Text(row[0]), Text(row[1]), Text(row[2], style=style),
                      *(Text(cell) for cell in row[3:]))
    if result.outcomes:
        target.print(table)
    target.print(summary_line(result), markup=False, highlight=False, soft_wrap=True)


def _fit_widths(rows: Sequence[Sequence[str]], total: int) -> list[int]:
    """Column widths that fit ``total`` characters: the short columns keep their width,
    DETAILS takes what is left (at least a few characters), ENGINE gives way when even
    that does not fit. Cells wider than their column are elided with '…'."""
    natural = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_COLUMNS)]
    gaps = 2 * (len(_COLUMNS) - 1)  # rich's padding between columns (no edge padding)
    short = sum(natural[1:5])
    engine = natural[0]
    left = total - gaps - short - engine
    if left < _MIN_WIDTHS["DETAILS"]:
        engine = max(_MIN_WIDTHS["ENGINE"], engine - (_MIN_WIDTHS["DETAILS"] - left))
        left = total - gaps - short - engine
    details = max(min(natural[5], left), _MIN_WIDTHS["DETAILS"])
    return [engine, *natural[1:5], details]
