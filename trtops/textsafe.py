"""Strings from outside (ONNX names, remote metadata, file names) made safe for a terminal.

One rule, applied where text reaches a terminal (error rendering, log lines, progress,
tables): characters that a terminal interprets instead of showing are shown as escapes.
That is every control character (C0, DEL, C1: ESC starts the sequences that recolor, move
the cursor, retitle the window or write to the clipboard) and the bidirectional overrides
and isolates (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C) that make text display
in another order than it reads ("Trojan Source"). Lists of names are cut to a few with a
count, so that a model with 5,000 inputs cannot print a 300 KB hint.

Pure and dependency-free: importing it costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Also U+2028/U+2029 (line and paragraph separators: some terminals start a new line).
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")

#: Longest untrusted string shown whole; longer ones keep their start and their length.
MAX_SHOWN = 200
#: Most names a list shows before "... and N more".
MAX_LISTED = 10


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object, *, limit: int | None = MAX_SHOWN, keep_lines: bool = False) -> str:
    """``text`` with control and bidi characters as escapes (``\\x1b``, ``\\u202e``).

    Args:
        text: any value (``str()`` is taken).
        limit: longest result before it is cut to its start and a character count; None
            for no limit (whole messages, whose parts were cut already).
        keep_lines: keep newlines and tabs (a multi-line message of our own).
    """
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 30, 10)] + f"... ({len(text)} characters)"
    return (_UNSAFE_KEEP_LINES if keep_lines else _UNSAFE).sub(_escape, text)


def name_list(names: Iterable[object], *, limit: int = MAX_LISTED, empty: str = "none",
              separator: str = ", ") -> str:
    """Names joined for a message: each made :func:`terminal_safe` and cut, at most ``limit``
    of them, then ``... and N more``."""
    items = list(names)
    shown = [terminal_safe(name, limit=60) for name in items[:limit]]
    if not shown:
        return empty
    text = separator.join(shown)
    if len(items) > limit:
        text += f"{separator}... and {len(items) - limit} more"
    return text
