"""The HTML report's charts, as inline SVG written by hand: no JavaScript, no library, no
external file, readable in any browser, printable, and as small as the data.

Each chart is one ``<svg role="img">`` with a ``<title>`` (its accessible name) and a
``<title>`` per bar (the exact number on hover). Colours come from the page's CSS classes.
Numbers are positions; every string in a chart goes through :func:`esc`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from trtops.gate.histogram import ErrorHistogram
from trtops.report.markup import esc, fmt_error, fmt_ms, fmt_number
from trtops.report.page import LATENCY_STATS, PerfCase

WIDTH = 420
LABEL_WIDTH = 130  # the case labels left of horizontal bars
MAX_LABEL = 22  # characters of a case label drawn in a chart (the table has it whole)


def _open(uid: str, title: str, height: float, cls: str) -> list[str]:
    return [f'<svg class="chart {cls}" role="img" aria-labelledby="{uid}-t" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
            f'xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{uid}-t">{esc(title, limit=None)}</title>']


def _nice_step(span: float, ticks: int = 4) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) that gives about ``ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def error_histogram(histogram: ErrorHistogram, atol: float | None, uid: str, title: str) -> str:
    """Bars of |error| counts over a log axis, the absolute tolerance as a dashed line.

    Args:
        histogram: the gate's histogram of one output.
        atol: the output's absolute tolerance (None or 0: no line).
        uid: a page-unique id prefix.
        title: the chart's accessible name.
    """
    height, left, right, top, bottom = 150.0, 44.0, 12.0, 20.0, 30.0
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    low, high = histogram.log10_min, histogram.log10_max
    counts = histogram.counts
    peak = max(counts) if counts and max(counts) > 0 else 1
    bar_w = plot_w / max(len(counts), 1)
    edges = histogram.edges()

    def x(log: float) -> float:
        return left + (log - low) / (high - low) * plot_w

    out = _open(uid, title, height, "histogram")
    out.append(f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
               f'y2="{top + plot_h}"/>')
    out.append(f'<text class="tick" x="{left - 4}" y="{top + 4}" text-anchor="end">{peak:,}</text>')
    out.append(f'<text class="tick" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>')
    for i, count in enumerate(counts):
        if not count:
            continue
        h = max(count / peak * plot_h, 1.5)
        out.append(f'<rect class="bar" x="{left + i * bar_w + 0.5:.1f}" y="{top + plot_h - h:.1f}" '
                   f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}"><title>'
                   f'{fmt_error(edges[i])} to {fmt_error(edges[i + 1])}: {count:,} elements'
                   f'</title></rect>')
    decades = int(round(high - low))
    every = max(1, math.ceil(decades / 8))
    for step in range(0, decades + 1, every):
        tick_x = x(low + step)
        out.append(f'<line class="axis" x1="{tick_x:.1f}" y1="{top + plot_h}" x2="{tick_x:.1f}" '
                   f'y2="{top + plot_h + 4}"/>')
        out.append(f'<text class="tick" x="{tick_x:.1f}" y="{top + plot_h + 15}" '
                   f'text-anchor="middle">1e{int(low + step)}</text>')
    out.append(f'<text class="tick" x="{left + plot_w}" y="{height - 2}" text-anchor="end">'
               f'|error| (log scale)</text>')
    if atol is not None and atol > 0:
        tol_x = min(max(x(math.log10(atol)), left), left + plot_w)
        anchor = "end" if tol_x > left + plot_w * 0.7 else "start"
        shift = -4 if anchor == "end" else 4
        out.append(f'<line class="tolerance" x1="{tol_x:.1f}" y1="{top - 6}" x2="{tol_x:.1f}" '
                   f'y2="{top + plot_h}"><title>atol {fmt_error(atol)}</title></line>')
        out.append(f'<text class="tolerance-label" x="{tol_x + shift:.1f}" y="{top - 8}" '
                   f'text-anchor="{anchor}">atol {fmt_error(atol)}</text>')
    if not any(counts):
        out.append(f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
                   f'text-anchor="middle">every element matches exactly</text>')
    out.append("</svg>")
    return "".join(out)


def _bars(rows: Sequence[tuple[str, Sequence[tuple[str, float, str]]]], uid: str, title: str,
          cls: str, unit: str, markers: Mapping[str, tuple[float, str]] | None = None) -> str:
    """Horizontal bars in groups: rows of (label, [(css class, value, value text)]); a
    marker of a row's label is a dashed line across that group (value, its title)."""
    markers = markers or {}
    bar_h, gap, group_gap, top, bottom = 11.0, 3.0, 12.0, 8.0, 24.0
    right = 70.0
    plot_w = WIDTH - LABEL_WIDTH - right
    values = [v for _, bars in rows for _, v, _ in bars]
    values += [value for value, _ in markers.values()]
    peak = max(values) if values and max(values) > 0 else 1.0
    step = _nice_step(peak)
    axis_max = step * math.ceil(peak / step)
    height = top + bottom + sum(len(bars) * (bar_h + gap) + group_gap for _, bars in rows)
    out = _open(uid, title, height, cls)

    def x(value: float) -> float:
        return LABEL_WIDTH + value / axis_max * plot_w

    plot_bottom = height - bottom
    tick = 0.0
    while tick <= axis_max + step / 2:
        out.append(f'<line class="grid" x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" '
                   f'y2="{plot_bottom:.1f}"/>')
        out.append(f'<text class="tick" x="{x(tick):.1f}" y="{plot_bottom + 13:.1f}" '
                   f'text-anchor="middle">{fmt_number(tick)}</text>')
        tick += step
    out.append(f'<text class="tick" x="{WIDTH - 4}" y="{height - 2}" text-anchor="end">{esc(unit)}</text>')
    y = top
    for label, bars in rows:
        group_h = len(bars) * (bar_h + gap)
        group_top = y
        out.append(f'<text class="label" x="{LABEL_WIDTH - 6}" y="{y + group_h / 2 + 3:.1f}" '
                   f'text-anchor="end">{esc(_short(label))}<title>{esc(label)}</title></text>')
        for css, value, text in bars:
            w = max(value / axis_max * plot_w, 1.0)
            out.append(f'<rect class="{css}" x="{LABEL_WIDTH}" y="{y:.1f}" width="{w:.1f}" '
                       f'height="{bar_h}"><title>{esc(label)}: {esc(text)}</title></rect>')
            out.append(f'<text class="value" x="{LABEL_WIDTH + w + 4:.1f}" y="{y + bar_h - 2:.1f}">'
                       f'{esc(text)}</text>')
            y += bar_h + gap
        if label in markers:  # over the group's bars, so it stays visible
            value, text = markers[label]
            mark_x = x(value)
            out.append(f'<line class="baseline" x1="{mark_x:.1f}" y1="{group_top - 2:.1f}" '
                       f'x2="{mark_x:.1f}" y2="{y:.1f}"><title>{esc(label)}: {esc(text)}</title></line>')
        y += group_gap
    out.append("</svg>")
    return "".join(out)


def latency_chart(cases: Sequence[PerfCase], uid: str, title: str,
                  baseline_ms: Mapping[str, float] | None = None) -> str | None:
    """Median, p90 and p99 latency bars per measured case; the previous engine's median of
    the same case (``baseline_ms`` by label) as a dashed line. None when no case has a
    latency."""
    rows = []
    for case in cases:
        bars = [(f"bar-{stat}", case.latency_ms[stat], f"{stat} {fmt_ms(case.latency_ms[stat])}")
                for stat in LATENCY_STATS if stat in case.latency_ms]
        if bars:
            rows.append((case.label, bars))
    if not rows:
        return None
    markers = {label: (value, f"previous engine: median {fmt_ms(value)}")
               for label, value in (baseline_ms or {}).items() if any(r[0] == label for r in rows)}
    return _bars(rows, uid, title, "latency", "ms", markers)


def throughput_chart(cases: Sequence[PerfCase], uid: str, title: str) -> str | None:
    """One throughput bar (inferences per second) per measured case; None without any."""
    rows = [(case.label, [("bar-throughput", case.throughput,
                           f"{fmt_number(case.throughput)}/s")])
            for case in cases if case.throughput is not None]
    if not rows:
        return None
    return _bars(rows, uid, title, "throughput", "inferences/s")
