"""The plan as people read it: one line per action, then a summary.
"""
from __future__ import annotations

from trtops.plan.model import Plan

# --------------------------------------------------------------------------- rendering

_SYMBOLS = {"build": "+", "rebuild": "~", "reuse": "=", "skip": "-", "rejected": "!"}
_STYLES = {"build": "green", "rebuild": "yellow", "reuse": "dim", "skip": "cyan", "rejected": "red"}


def summary_line(plan_: Plan) -> str:
    counts = plan_.counts()
    return (f"Plan: {counts['build']} to build, {counts['rebuild']} to rebuild, {counts['reuse']} to reuse, "
            f"{counts['skip']} skipped, {counts['rejected']} rejected.")


def render_lines(plan_: Plan, *, show_all: bool = False) -> list[tuple[str, str]]:
    """The plan as (style, text) lines: header, one line per action (reuse lines only with
    ``show_all``), summary. Styles are rich style names ('' for none)."""
    lines: list[tuple[str, str]] = []
    specs = len(plan_.actions)
    lines.append(("bold", f"trtops plan: {specs} engine{'s' if specs != 1 else ''} for "
                          f"{plan_.platform.describe()} (cache {plan_.cache_url})"))
    shown = [a for a in plan_.actions if show_all or a.kind != "reuse"]
    if shown:
        lines.append(("", ""))
        width = max(len(a.id) for a in shown)
        for action in shown:
            key = action.key.key[:12] if action.key else "-" * 12
            text = f"  {_SYMBOLS[action.kind]} {action.kind:<8} {action.id:<{width}}  {key}  {action.reason}"
            lines.append((_STYLES[action.kind], text))
    hidden = len(plan_.actions) - len(shown)
    lines.append(("", ""))
    if hidden:
        lines.append(("dim", f"  ({hidden} up to date, not listed; --all lists them)"))
    lines.append(("bold", summary_line(plan_)))
    counts = plan_.counts()
    if not plan_.pending:
        if counts["skip"]:
            lines.append(("", f"Nothing to build on this platform ({counts['skip']} skipped)."))
        else:
            lines.append(("green", "No changes. Engines are up to date."))
    if counts["skip"] and plan_.platform.source == "detected":
        lines.append(("dim", "hint: to plan for another machine pass --platform FILE (written there by "
                             "`trtops info --json -o FILE`) or --tensorrt/--gpu/--compute-capability"))
    return lines
