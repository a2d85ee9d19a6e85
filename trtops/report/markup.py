"""Text into HTML and SVG: the one escape of the HTML report, and its number formats.

Every string a report did not write itself (model, input and output names from ONNX files,
messages, anything read from a cache entry, which may come from a shared remote) goes
through :func:`esc`: ``html.escape`` for markup (``<``, ``&``, quotes), after the one rule
of :mod:`trtops.textsafe` for characters that display differently from how they read
(control characters, bidi overrides: "Trojan Source" names show as ``\\u202e``), so that a
hostile name can neither run script nor disguise itself on the page.
"""

from __future__ import annotations

import html
import math

from trtops.textsafe import terminal_safe

#: Longest untrusted string shown whole (names, labels); messages pass ``limit=None``.
MAX_NAME = 200


def esc(text: object, *, limit: int | None = MAX_NAME) -> str:
    """``text`` safe inside an HTML/SVG element or a quoted attribute."""
    return html.escape(terminal_safe(text, limit=limit, keep_lines=True), quote=True)


def fmt_ms(value: float | None) -> str:
    """``0.412 ms``, ``12.3 ms``, ``1,234 ms``; an em dash when unknown."""
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value:,.0f} ms"
    return f"{value:.3g} ms"


def fmt_number(value: float | None) -> str:
    """Three significant digits, thousands separated: ``1,230``, ``0.0123``."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_error(value: float | None) -> str:
    """An error or tolerance: ``1e-05``, ``0.0123`` (``%g``)."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.3g}"
